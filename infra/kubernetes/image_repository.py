"""The app image's ECR repository (eks): immutable tags, scanned on push, a lifecycle.

Immutable tags: a tag can never point at other bits, so the digest the deploy workflow
records is the image every node pulls. The Deployment refers to the image by digest
anyway; a new digest is a new pod template, so a new image is a rolling update.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_aws as aws

UNTAGGED_EXPIRY_DAYS: Final = 7
KEPT_IMAGES: Final = 30

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
