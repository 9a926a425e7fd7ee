"""Compiles the inner loops of search indexing (skill/log_archiver/search/_gramset.c) when
the package is built or installed, editable installs included.

Without a C compiler the package still installs: search indexing then runs on numpy,
several times slower, and the build says so. The tests require the compiled module.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("skill/log_archiver/search/_gramset.c")


def _compile(root: Path) -> Path | None:
    source = root / SOURCE
    target = source.with_name("_gramset" + sysconfig.get_config_var("EXT_SUFFIX"))
    link = ["-bundle", "-undefined", "dynamic_lookup"] if sys.platform == "darwin" \
        else ["-shared"]
    command = [os.environ.get("CC") or "cc"]  # (as the message names it)
    try:
        target.unlink(missing_ok=True)  # (a failed build must not leave an older one)
        command = [*shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"),
                   *link, "-fPIC", "-O2", f"-I{sysconfig.get_paths()['include']}",
                   str(source), "-o", str(target)]
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, ValueError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        print(f"log-archiver: could not compile {SOURCE} ({' '.join(command)}): "
              f"{detail.strip()}; search indexing will run on numpy, more slowly. Install a "
              "C compiler and the Python headers (apt-get install gcc python3-dev) and "
              "reinstall for the fast path.", file=sys.stderr)
        return None
    return target


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        built = _compile(Path(self.root))
        if built is None:
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports it from the source tree
            build_data["force_include"][str(built)] = \
                f"log_archiver/search/{built.name}"
