#!/usr/bin/env python3
"""Offline SAM -> CloudFormation transform, for a deeper lint than `cfn-lint template.yaml`.

cfn-lint (>= 1.x) validates AWS::Serverless::* against its own schemas and misses bad
!Ref / !GetAtt targets inside SAM function properties. Transforming with aws-sam-translator
first and linting the plain CloudFormation output catches those (docs: TOOLING.md §5).

Usage (needs `pip install cfn-lint aws-sam-translator`; no AWS credentials or network):
    AWS_DEFAULT_REGION=us-east-1 python scripts/sam_transform.py template.yaml > /tmp/cfn.json
    cfn-lint /tmp/cfn.json
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_CODE_URI = "s3://placeholder-bucket/code.zip"
# Resource types whose local code path `sam package` would upload to S3.
CODE_URI_PROPS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class NoManagedPolicies:
    """Managed-policy loader that never calls IAM (policy ARNs are left as written)."""

    def load(self):
        return {}


def _is_local(uri):
    # A plain string that is not s3:// is a local path (".", "functions/x", ...).
    # Dicts ({Bucket, Key}) and intrinsics are left alone.
    return isinstance(uri, str) and not uri.startswith("s3://")


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as fh:
        tpl = yaml_parse(fh.read())

    globals_fn = (tpl.get("Globals") or {}).get("Function") or {}
    if _is_local(globals_fn.get("CodeUri")):
        globals_fn["CodeUri"] = PLACEHOLDER_CODE_URI

    for res in (tpl.get("Resources") or {}).values():
        prop = CODE_URI_PROPS.get(res.get("Type"))
        if prop is None:
            continue
        props = res.setdefault("Properties", {})
        if props is None:
            props = res["Properties"] = {}
        # Inline code or an image needs no CodeUri; a function with neither gets the
        # placeholder only if Globals did not supply one.
        if "InlineCode" in props or "ImageUri" in props:
            continue
        if _is_local(props.get(prop)) or (prop not in props and prop == "ContentUri"):
            props[prop] = PLACEHOLDER_CODE_URI

    region = os.environ["AWS_DEFAULT_REGION"]
    cfn = transform(tpl, {"AWS::Region": region}, NoManagedPolicies())
    json.dump(cfn, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} template.yaml > cfn.json")
    main(sys.argv[1])
