"""Where membraned, membranectl, membrane-cni and the routing modules come from: a build or the install."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .names import ROUTING_MODULES


@dataclass
class Binaries:
    membraned: str
    membranectl: str
    cni: str | None
    module_files: dict[str, str]   # module name -> .so, when taken from a build
    source: str                    # "build <dir>" or "install"

    def to_json(self) -> dict:
        return self.__dict__.copy()


def find_binaries(build_dir: str | None, require_cni: bool = True) -> Binaries:
    """The build's binaries (--build-dir, default ./build when it has them), else the install's (PATH)."""
    explicit = build_dir is not None
    build = Path(build_dir or "build").resolve()
    in_build = {
        "membraned": build / "kernel" / "membraned",
        "membranectl": build / "cli" / "membranectl",
        "cni": build / "cni" / "membrane-cni",
    }
    if in_build["membraned"].is_file():
        modules = {}
        for name in ROUTING_MODULES.values():
            so = build / "modules" / name / f"{name}.so"
            if so.is_file():
                modules[name] = str(so)
        missing = [str(p) for key, p in in_build.items() if not p.is_file() and (key != "cni" or require_cni)]
        if missing:
            raise LabError(f"the build in {build} lacks {', '.join(missing)} (build it, e.g. scripts/build.sh)")
        cni = str(in_build["cni"]) if in_build["cni"].is_file() else None
        return Binaries(str(in_build["membraned"]), str(in_build["membranectl"]), cni, modules, f"build {build}")
    if explicit:
        raise LabError(f"--build-dir {build}: no membraned at {in_build['membraned']}")
    found = {name: shutil.which(name) for name in ("membraned", "membranectl", "membrane-cni")}
    if found["membraned"] and not found["membrane-cni"]:
        # The plugin is installed where runtimes look for plugins, not on PATH.
        prefix = Path(found["membraned"]).resolve().parent.parent
        for candidate in (prefix / "libexec" / "cni" / "membrane-cni", Path("/opt/cni/bin/membrane-cni")):
            if candidate.is_file():
                found["membrane-cni"] = str(candidate)
                break
    missing = [n for n, p in found.items() if not p and (n != "membrane-cni" or require_cni)]
    if missing:
        raise LabError(f"no build in {build} and not installed (PATH): {', '.join(missing)}; "
                       "pass --build-dir or install Membrane")
    return Binaries(found["membraned"], found["membranectl"], found["membrane-cni"], {}, "install")


def installed_module(membraned: str, name: str) -> str:
    """An installed module's library: <prefix>/lib[/<multiarch>]/membrane/modules/<name>.so."""
    prefix = Path(membraned).resolve().parent.parent
    for candidate in sorted(prefix.glob(f"lib*/membrane/modules/{name}.so")) + \
            sorted(prefix.glob(f"lib*/*/membrane/modules/{name}.so")):
        return str(candidate)
    raise LabError(f"cannot find the installed {name}.so under {prefix}/lib*/ (needed beside the topology's "
                   "modules); pass --build-dir with a build that has it")


def membrane_module(binaries: Binaries, name: str) -> str:
    """One of Membrane's own modules by name: from the build the lab runs (modules/<name>/<name>.so), or the install."""
    if binaries.source == "install":
        return installed_module(binaries.membraned, name)
    so = Path(binaries.membraned).resolve().parent.parent / "modules" / name / f"{name}.so"
    if not so.is_file():
        raise LabError(f"the build has no module {name!r} ({so}): build it first, or give the library's path")
    return str(so)
