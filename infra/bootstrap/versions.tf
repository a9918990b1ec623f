# Exact provider pin: the bootstrap creates the state bucket and deploy roles every stack depends on,
# so an unreviewed provider upgrade must never change them. Bump deliberately, then commit the lock file.
terraform {
  required_version = "~> 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "6.21.0"
    }
  }

  # The bootstrap starts on local state (the bucket it creates does not exist yet); README.md shows
  # how to migrate it into the bucket with `terraform init -migrate-state`.
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      "mlplat/component"  = "bootstrap"
      "mlplat/managed-by" = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
