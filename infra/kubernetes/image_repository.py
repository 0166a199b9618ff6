"""The app image's ECR repository (eks): immutable tags, scanned on push, a lifecycle.

Immutable tags: a tag can never point at other bits, so the digest the deploy workflow
records is the image every node pulls. The Deployment refers to the image by digest
anyway; a new digest is a new pod template, so a new image is a rolling update.

The deploy workflow pushes three tagged images per release (pyscale/image_publish.py):
``<commit>-amd64``, ``<commit>-arm64`` and the manifest list ``<commit>`` over them. Every
manifest is tagged, so the untagged rule below never selects one a list still names
(whether ECR's lifecycle would spare an untagged child of a tagged list is not something
an AWS source here states); it expires only what a hand push left untagged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_aws as aws

UNTAGGED_EXPIRY_DAYS: Final = 7
# Releases a rollback can go back to; ECR counts each manifest as an image.
KEPT_RELEASES: Final = 30
IMAGES_PER_RELEASE: Final = 3  # the manifest list and one image per architecture
KEPT_IMAGES: Final = KEPT_RELEASES * IMAGES_PER_RELEASE


def repository_name(platform_name: str) -> str:
    """The repository of EksPlatform ``platform_name`` (``<project>-<stack>``): the deploy
    workflow finds it by this name before the stack's outputs exist."""
    return f"{platform_name}-app"


LIFECYCLE_POLICY: Final = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "untagged layers of multi-arch pushes",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": UNTAGGED_EXPIRY_DAYS,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "keep the latest releases for rollbacks",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": KEPT_IMAGES,
                },
                "action": {"type": "expire"},
            },
        ]
    }
)


@dataclass(frozen=True)
class ImageRepositoryArgs:
    """Inputs of ImageRepository: the repository name and tags."""

    repository_name: str
    tags: Mapping[str, str] = field(default_factory=dict)


class ImageRepository(pulumi.ComponentResource):
    """The repository and its lifecycle policy. Outputs: ``repository_url``."""

    def __init__(
        self, name: str, args: ImageRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:kubernetes:ImageRepository", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
            ],
            tags=dict(args.tags),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=LIFECYCLE_POLICY,
            opts=child,
        )
        self.repository_url = self.repository.repository_url
        self.register_outputs({"repository_url": self.repository_url})
