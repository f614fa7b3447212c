terraform {
  # optional() object attributes and startswith() arrived in 1.3.
  required_version = ">= 1.3.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}

provider "aws" {
  region = var.region

  # Every resource carries the project tag: the budget filters costs on it.
  default_tags {
    tags = merge(var.tags, {
      (local.project_tag_key) = var.project
      environment             = var.environment
      managed_by              = "terraform"
    })
  }
}
