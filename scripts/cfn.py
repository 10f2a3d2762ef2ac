#!/usr/bin/env python3
"""What the deploy rehearsal (make rehearse) and the template tests ask of Python.

    cfn.py transform TEMPLATE CODE_URI [NAME=VALUE ...] > transformed.json
    cfn.py literals < strings.json > values.json

transform: the CloudFormation JSON that `sam deploy` submits for TEMPLATE.
aws-sam-translator (installed with cfn-lint) is the library the SAM CLI runs for
`sam build`, `sam package` and `sam deploy`. As `sam package` does, every
AWS::Serverless::Function's CodeUri becomes CODE_URI (s3://bucket/key). NAME=VALUE
are parameter values (the transform resolves a few properties with them, as sam
deploy's does). A template without a Transform is printed as JSON, its short forms
(!Ref, !If, !Condition) read as CloudFormation reads them.

literals: a JSON array of Python literals (moto_server returns a role's inline
policy as str() of the document it was given) to the JSON array of their values.

Exit 2 when aws-sam-translator is missing, 1 when the transform refuses the template.
"""
import ast
import json
import os
import sys


class NoManagedPolicies:
    """The managed-policy loader; none are looked up (sam deploy asks IAM)."""

    def load(self):
        return {}


def transform_cmd(args):
    try:
        from samtranslator.model.exceptions import InvalidDocumentException
        from samtranslator.translator.transform import transform
        from samtranslator.yaml_helper import yaml_parse
    except ImportError as e:
        print(f"aws-sam-translator missing (pip install cfn-lint): {e}", file=sys.stderr)
        return 2
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 64
    path, code_uri = args[0], args[1]
    params = {}
    for kv in args[2:]:
        name, sep, value = kv.partition("=")
        if not sep:
            print(f"parameter {kv!r}: want NAME=VALUE", file=sys.stderr)
            return 64
        params[name] = value
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    if template.get("Transform") is not None:
        for res in (template.get("Resources") or {}).values():
            if isinstance(res, dict) and res.get("Type") == "AWS::Serverless::Function":
                res.setdefault("Properties", {})["CodeUri"] = code_uri
        try:
            template = transform(template, params, NoManagedPolicies())
        except InvalidDocumentException as e:
            for cause in e.causes:
                print(f"{path}: {cause.message}", file=sys.stderr)
            return 1
    json.dump(template, sys.stdout, indent=1, sort_keys=True)
    return 0


def literals_cmd(_args):
    json.dump([ast.literal_eval(s) for s in json.load(sys.stdin)], sys.stdout)
    return 0


def main(argv):
    cmds = {"transform": transform_cmd, "literals": literals_cmd}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 64
    return cmds[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
