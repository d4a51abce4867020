#!/usr/bin/env python3
"""membrane-lab's two forms run the same command line: `python3 lab/membrane_lab.py` (a checkout)
and the built zipapp that `cmake --install` puts in bin/membrane-lab (MEMBRANE_LAB_APP).
Only commands that need no root and make nothing: --help, check.

    MEMBRANE_LAB_APP=build/lab/membrane-lab python3 test/unit/lab/command_test.py
    (CTest: unit.lab_command)
"""

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[3]
SHIM = [sys.executable, str(SOURCE / "lab" / "membrane_lab.py")]


def app() -> list[str]:
    path = os.environ.get("MEMBRANE_LAB_APP")
    if not path:
        raise AssertionError("set MEMBRANE_LAB_APP to the built zipapp (<build>/lab/membrane-lab)")
    return [path]


def run(command: list[str], *args: str) -> tuple[int, str, str]:
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=30, cwd=SOURCE)
    return result.returncode, result.stdout, result.stderr


class BothForms(unittest.TestCase):
    def same(self, *args: str) -> tuple[int, str, str]:
        from_checkout = run(SHIM, *args)
        installed = run(app(), *args)
        self.assertEqual(installed, from_checkout, f"membrane-lab {' '.join(args)}")
        return from_checkout

    def test_help(self):
        for command in ([], ["up"], ["pod", "add"], ["node", "stop"], ["check"]):
            with self.subTest(command=command):
                code, out, _ = self.same(*command, "--help")
                self.assertEqual(code, 0)
                self.assertTrue(out.startswith(f"usage: membrane-lab {' '.join(command)}".rstrip()), out)

    def test_check_example(self):
        code, out, err = self.same("check", "lab/examples/two-nodes-vxlan.toml")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out, "lab/examples/two-nodes-vxlan.toml: lab vxdemo, routing vxlan, index 71, "
                              "store etcd at https://192.168.71.254:2379\n"
                              "  node node1: 192.168.71.1, pods 10.71.1.0/24: web1, db1\n"
                              "  node node2: 192.168.71.2, pods 10.71.2.0/24: web2, db2\n")

    def test_check_refusal(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as topology:
            topology.write('name = "demo"\nrouting = "vxlan"\nindex = 0\n[[nodes]]\nname = "node1"\n')
            topology.flush()
            code, out, err = self.same("check", topology.name)
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, f"membrane-lab: {topology.name}: 'index' = 0 must be between 1 and 254\n")


if __name__ == "__main__":
    unittest.main()
