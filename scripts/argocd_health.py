#!/usr/bin/env python3
"""Runs deploy/argocd/health.lua the way Argo CD does (the resource as the
global `obj`, the returned table is the health) on a resource given as JSON
on stdin; prints {"status": ..., "message": ...}. Uses lupa (real Lua),
installed into .cache/venv by scripts/install-test-tools."""

import json
import os
import sys

from lupa import LuaRuntime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def to_lua(lua, v):
    if isinstance(v, dict):
        return lua.table_from({k: to_lua(lua, x) for k, x in v.items()})
    if isinstance(v, list):
        return lua.table_from([to_lua(lua, x) for x in v])
    return v


def main():
    lua = LuaRuntime(unpack_returned_tuples=True)
    script = open(os.path.join(ROOT, "deploy", "argocd", "health.lua")).read()
    lua.globals().obj = to_lua(lua, json.load(sys.stdin))
    hs = lua.execute(script)
    print(json.dumps({"status": hs["status"], "message": hs["message"]}))


if __name__ == "__main__":
    main()
