"""Checks every service's command in ehrqa's compose files against the options its program
documents, so a stack that cannot be started here (no Docker, no image registry) at least asks
nothing its programs do not take:

- ehrqa: each `--flag` against `ehrqa <subcommand> --help` (the binary under test), each
  EHRQA_* variable against the variables `ehrqa --help` names;
- vLLM: each `--flag` of its entrypoint against tests/deploy/vllm-serve-options.txt;
- PostgreSQL: each `-c name=value` against `postgres --describe-config` of the PostgreSQL the
  tests run (the image's major version);
- `extends` pointing at a service the named file has.

Usage: check_compose.py EHRQA_BINARY POSTGRES_BINARY COMPOSE_FILE...  (prints one line per
problem; exit 1 if any).
"""

import os
import re
import shlex
import subprocess
import sys

from ruamel.yaml import YAML

HERE = os.path.dirname(os.path.abspath(__file__))


def flags(args):
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def ehrqa_help(binary, sub):
    out = subprocess.run([binary, *sub, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out)), set(re.findall(r"env: (EHRQA_[A-Z_]+)", out))


def vllm_options():
    with open(os.path.join(HERE, "vllm-serve-options.txt")) as f:
        return {line.strip() for line in f if line.startswith("--")}


def postgres_settings(binary):
    cmd = [binary, "--describe-config"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {line.split("\t", 1)[0] for line in out.splitlines() if line}


def check_service(name, svc, ehrqa, postgres, problems):
    command = svc.get("command") or []
    entrypoint = svc.get("entrypoint") or []
    if isinstance(command, str):
        command = shlex.split(command)
    image = str(svc.get("image", ""))
    if "build" in svc:
        known, env = ehrqa_help(ehrqa, command[:1])
        global_known, global_env = ehrqa_help(ehrqa, [])
        for f in flags(command):
            if f not in known:
                problems.append(f"{name}: ehrqa {command[0]} has no option {f}")
        for var in (svc.get("environment") or {}):
            if var.startswith("EHRQA_") and var not in env | global_env:
                problems.append(f"{name}: ehrqa reads no variable {var}")
        if not command:
            problems.append(f"{name}: no command")
    if image.startswith("vllm/"):
        script = " ".join(entrypoint) if isinstance(entrypoint, list) else entrypoint
        words = shlex.split(script.replace("$$", "$"))
        words = [w for w in words if w.startswith("--")]
        for f in flags(words):
            if f not in vllm_options():
                problems.append(f"{name}: vLLM documents no option {f}")
        if not words:
            problems.append(f"{name}: no vLLM options found in its entrypoint")
    if image.startswith("postgres"):
        settings = postgres_settings(postgres)
        for i, a in enumerate(command):
            if a == "-c":
                setting = command[i + 1].split("=", 1)[0]
                if setting not in settings:
                    problems.append(f"{name}: PostgreSQL has no setting {setting}")


def main():
    ehrqa, postgres, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    problems = []
    yaml = YAML(typ="safe")
    for path in files:
        with open(path) as f:
            doc = yaml.load(f)
        for name, svc in doc["services"].items():
            ext = svc.get("extends")
            if ext:
                with open(os.path.join(os.path.dirname(path), ext["file"])) as f:
                    base = yaml.load(f)
                if ext["service"] not in base["services"]:
                    problems.append(f"{path}: {name} extends a service {ext['file']} lacks")
                    continue
                svc = {**base["services"][ext["service"]], **svc}
            check_service(f"{os.path.basename(path)}: {name}", svc, ehrqa, postgres, problems)
    for p in problems:
        print(p)
    print(f"checked {len(files)} compose files", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
