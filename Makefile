# pyscale — every command a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv from PATH, else a private copy in .tools/ (a fresh machine has only python3).
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# The uv every workflow installs (astral-sh/setup-uv `version:`; tests/ci keeps them equal)
# and the private copy: the release's requirements come from `uv export`, so a deploy from
# a newer uv must not be able to change the artifact's bytes and roll the fleet for nothing.
UV_VERSION := 0.13.9
VENV := .venv
STACK ?= dev
# Programs the tests and the one-machine topology run for real: command=debian-package.
# podman (with runc) and mmdebstrap build and run the app's container image in tests/image/;
# systemd-analyze rates the EC2 units' sandbox (tests/infra/test_boot_script.py).
SYSTEM_PACKAGES := redis-server redis-cli=redis-tools haproxy wrk shellcheck podman runc mmdebstrap \
	systemd-analyze=systemd

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Bytecode compiled once at install: pulumi_aws is large, and where PYTHONDONTWRITEBYTECODE
# is set (CI images often do) every Pulumi program run would otherwise recompile it (~4 s).
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --compile-bytecode
	@touch $@

.PHONY: sync
sync: $(VENV)/.synced ## Create .venv from the lock file (Python only: what `pulumi preview/up` needs)

.PHONY: install
install: $(VENV)/.synced ## Create .venv from the lock file and check the OS programs
	@scripts/ensure-system-packages $(SYSTEM_PACKAGES)

.PHONY: run
run: install ## Start Redis + app replicas + HAProxy shaped like STACK (default dev)
	$(VENV)/bin/pyscale local up --stack $(STACK)

.PHONY: test
test: install ## Run the whole test suite
	$(VENV)/bin/pytest

.PHONY: lint
lint: $(VENV)/.synced ## ruff lint and format check, mypy type check ([tool.mypy] in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: docs
docs: $(VENV)/.synced ## Regenerate Pulumi.yaml's config schema, the README's configuration reference, stack table and app variables, docs/benchmarks.md
	$(VENV)/bin/python -m pyscale.docs

.PHONY: fmt
fmt: $(VENV)/.synced ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: bench-app
bench-app: install ## Benchmark one app instance: hello vs cached hit vs miss vs Redis down
	$(VENV)/bin/python bench/bench_app.py

.PHONY: bench
bench: install ## Benchmark the one-machine topology with wrk; tables + plots in bench/results/<date>/
	$(VENV)/bin/python bench/bench_topology.py

.PHONY: bench-slow-clients
bench-slow-clients: install ## Slow clients vs one instance's gunicorn, alone and behind its proxy
	$(VENV)/bin/python bench/bench_slow_clients.py

# ---- The app's container image (container/Dockerfile, pyscale/image.py) ---------------------
CONTAINER ?= podman
IMAGE ?= pyscale-app
.PHONY: image-context
image-context: $(VENV)/.synced ## Write the image's build context to build/image (WHEELS="3.12.11 x86_64" downloads wheels for an offline build)
	$(VENV)/bin/python -m pyscale.image build/image $(if $(WHEELS),--wheels $(WHEELS))

.PHONY: image
image: image-context ## Build the app's container image IMAGE with CONTAINER (podman|docker); BASE_IMAGE=ref@sha256:... overrides the base
	$(CONTAINER) build $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) $(if $(WHEELS),--build-arg PIP_NO_INDEX=1) --tag $(IMAGE) build/image

# ---- The image of an eks deploy (pyscale/image_publish.py, .github/workflows/deploy.yml) -----
# The base image's one pin is the Dockerfile's ARG default; it is read here and passed
# explicitly so that check-base checks exactly what the build uses.
BASE_IMAGE_PIN := $(shell sed -n 's/^ARG BASE_IMAGE=//p' container/Dockerfile)
IMAGE_ARCH ?= amd64
IMAGE_ARCHIVES ?= build/images
.PHONY: image-platform
image-platform: $(VENV)/.synced ## Print platform=ec2|eks|kubernetes of STACK (a workflow job's output)
	@$(VENV)/bin/python -m pyscale.image_publish platform --stack $(STACK)

.PHONY: image-archive
image-archive: image-context ## Build the image for IMAGE_ARCH (amd64|arm64) with docker on a machine of that CPU, saved to IMAGE_ARCHIVES
	$(VENV)/bin/python -m pyscale.image_publish check-base --image $(BASE_IMAGE_PIN) --arch $(IMAGE_ARCH)
	docker build --platform linux/$(IMAGE_ARCH) --provenance=false --build-arg BASE_IMAGE=$(BASE_IMAGE_PIN) --tag pyscale-app:$(IMAGE_ARCH) build/image
	mkdir -p $(IMAGE_ARCHIVES)
	docker save --output $(IMAGE_ARCHIVES)/pyscale-app-$(IMAGE_ARCH).tar pyscale-app:$(IMAGE_ARCH)

.PHONY: image-publish
image-publish: $(VENV)/.synced ## eks deploy: push IMAGE_ARCHIVES as IMAGE_TAG (the commit) to STACK's ECR repository, or reuse it; check its architectures; print repository=, image=
	@$(VENV)/bin/python -m pyscale.image_publish publish --stack $(STACK) --tag "$(IMAGE_TAG)" --archives $(IMAGE_ARCHIVES)

.PHONY: image-use
image-use: $(VENV)/.synced ## eks deploy: set STACK_REF's pyscale:appImage to APP_IMAGE in this checkout's stack file (never committed)
	@$(VENV)/bin/python -m pyscale.image_publish use --stack-ref "$(STACK_REF)" --image "$(APP_IMAGE)"

.PHONY: image-keep-deployed
image-keep-deployed: $(VENV)/.synced ## eks preview: set STACK_REF's pyscale:appImage to the image it runs now (its appImage output), in this checkout only
	@$(VENV)/bin/python -m pyscale.image_publish keep-deployed --stack-ref "$(STACK_REF)"

# ---- Offline plan (pyscale/plan/) -----------------------------------------------------------
PLAN_FORMAT ?= text
.PHONY: plan
plan: $(VENV)/.synced ## Offline plan of STACK, no cloud needed (PLAN_FORMAT=json|markdown, DIFF="dev prod", REPORT=file appends)
	@$(VENV)/bin/pyscale plan $(if $(DIFF),--diff $(DIFF),--stack $(STACK)) $(if $(filter json markdown,$(PLAN_FORMAT)),--$(PLAN_FORMAT)) $(if $(REPORT),>> "$(REPORT)")

.PHONY: bench-boot
bench-boot: install ## Time the boot's install path: the release's wheelhouse (--no-index) vs PyPI (needs python3.12, PyPI)
	$(VENV)/bin/python bench/bench_boot.py

.PHONY: bench-plan
bench-plan: $(VENV)/.synced ## Time `pyscale plan --stack prod` end to end (target <= 5 s on 2 cores)
	$(VENV)/bin/python bench/bench_plan.py

# ---- Cost and capacity (pyscale/cost/) -------------------------------------------------------
COST_FORMAT ?= text
.PHONY: cost
cost: $(VENV)/.synced ## Monthly cost and capacity of STACK, offline (COST_FORMAT=json|markdown, REPORT=file appends)
	@$(VENV)/bin/pyscale cost --stack $(STACK) $(if $(filter json markdown,$(COST_FORMAT)),--$(COST_FORMAT)) $(if $(REPORT),>> "$(REPORT)")

# ---- CI/CD and the policy pack (.github/workflows, policy/) ----------------------------------
.PHONY: policy-venv
policy-venv: policy/venv/.installed ## Create policy/venv, the policy pack's own venv the Pulumi CLI runs

policy/venv/.installed: policy/requirements.txt | $(UV)
	$(UV) venv --seed --allow-existing policy/venv
	$(UV) pip install --quiet --python policy/venv/bin/python -r policy/requirements.txt
	@touch $@

POLICY_REQUIREMENTS ?= policy/requirements.txt
.PHONY: policy-requirements
policy-requirements: | $(UV) ## Export policy/requirements.txt from uv.lock's policy group (hash-pinned; never edit it by hand)
	@{ echo "# The policy pack's venv (policy/venv): exported from uv.lock's policy group by"; \
	  echo "# \`make policy-requirements\`. Do not edit: change pyproject.toml, run uv lock and this."; \
	  $(UV) export --frozen --only-group policy --no-emit-project --no-header --quiet; } > "$(POLICY_REQUIREMENTS)"

.PHONY: policy-check
policy-check: $(VENV)/.synced ## Policy pack over STACK's offline program run (no cloud); REPORT=file appends Markdown
	$(VENV)/bin/python -m policy.offline --stack $(STACK) $(if $(REPORT),--markdown-report "$(REPORT)")

.PHONY: deploy-wait
deploy-wait: $(VENV)/.synced ## After `pulumi up`: follow STACK's instance refresh, verify, roll back on failure; REPORT=file appends Markdown
	$(VENV)/bin/pyscale deploy wait --stack $(STACK) $(if $(REPORT),--markdown-report "$(REPORT)")

# What `pulumi preview` covers: a pull request that changes none of it needs no preview.
PREVIEW_PATHS := infra app stacks policy pyscale/cost Pulumi.yaml pyproject.toml uv.lock .github/workflows/preview.yml
.PHONY: preview-scope
preview-scope: ## Print program=true|false: does HEAD change what a preview covers, since BASE (a commit)?
	@if git diff --quiet "$(BASE)...HEAD" -- $(PREVIEW_PATHS); then echo program=false; else echo program=true; fi

.PHONY: needs-verdict
needs-verdict: ## Fail unless every job in NEEDS_JSON (toJSON(needs)) succeeded or was skipped
	@python3 .github/scripts/needs_verdict.py

.PHONY: outputs-summary
outputs-summary: $(VENV)/.synced ## Print STACK_OUTPUTS_JSON (a deploy step's outputs) as Markdown
	@$(VENV)/bin/python .github/scripts/stack_outputs.py

.PHONY: stateful-summary
stateful-summary: $(VENV)/.synced ## Stateful resources the cloud preview of STACK_REF replaces or deletes, as Markdown (needs the Pulumi CLI and credentials); REPORT=file appends
	@preview=$$(mktemp); status=0; \
	pulumi preview --stack "$(STACK_REF)" --json --non-interactive > "$$preview" || status=$$?; \
	$(VENV)/bin/python .github/scripts/stateful_changes.py "$$preview" "$$status" $(if $(REPORT),>> "$(REPORT)"); \
	rm -f "$$preview"
