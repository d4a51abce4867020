#!/usr/bin/env python3
"""membrane-lab's topology parser (lab/membrane_lab/topology.py): what it accepts, and that each
refusal names the file and the key. Standard library unittest; no root, no namespaces.

    python3 test/unit/lab/topology_test.py      (CTest: unit.lab_topology)
"""

import sys
import tempfile
import unittest
import zlib
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(SOURCE / "lab"))

from membrane_lab.errors import LabError  # noqa: E402
from membrane_lab.topology import PodSpec, load_topology, parse_topology  # noqa: E402

HEAD = 'name = "demo"\nrouting = "vxlan"\n'
NODE = '\n[[nodes]]\nname = "node1"\n'


class Accepted(unittest.TestCase):
    def test_full_topology(self):
        topo = parse_topology(
            'name = "demo"\nrouting = "direct"\nindex = 42\n'
            '[[nodes]]\nname = "node1"\n[[nodes]]\nname = "node-2"\n'
            '[[pods]]\nname = "web1"\nnode = "node-2"\nlabels = { app = "web", "k8s.io/tier" = "front" }\n'
            'namespace = "shop"\n'
            '[[pods]]\nname = "db1"\nnode = "node1"\n', "t.toml")
        self.assertEqual((topo.name, topo.routing, topo.index, topo.store, topo.lease_ttl),
                         ("demo", "direct", 42, "etcd", 30))
        self.assertEqual(topo.nodes, ["node1", "node-2"])
        self.assertEqual(topo.pods, [PodSpec("web1", "node-2", {"app": "web", "k8s.io/tier": "front"}, "shop"),
                                     PodSpec("db1", "node1", {}, "default")])

    def test_index_defaults_to_one_derived_from_the_name(self):
        topo = parse_topology(HEAD + NODE, "t.toml")
        self.assertEqual(topo.index, 1 + zlib.crc32(b"demo") % 254)
        self.assertEqual(topo.pods, [])

    def test_store_and_lease(self):
        topo = parse_topology(HEAD + 'store = "etcd"\nlease_ttl = 5\n' + NODE, "t.toml")
        self.assertEqual((topo.store, topo.lease_ttl), ("etcd", 5))
        self.assertEqual(parse_topology(HEAD + 'store = "static"\n' + NODE, "t.toml").store, "static")

    def test_modules_are_named_by_their_file_relative_to_the_topology(self):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "build").mkdir()
            (Path(folder) / "build" / "my-mod.so").write_text("")
            topo = parse_topology(HEAD + 'modules = ["build/my-mod.so"]\n' + NODE, f"{folder}/t.toml")
            self.assertEqual(topo.modules, {"my-mod": str(Path(folder).resolve() / "build" / "my-mod.so")})
        self.assertEqual(parse_topology(HEAD + NODE, "t.toml").modules, {})
        # A bare name is one of Membrane's own modules, found in the build or the install at `up`.
        self.assertEqual(parse_topology(HEAD + 'modules = ["policy-l3l4"]\n' + NODE, "t.toml").modules, {"policy-l3l4": ""})

    def test_examples(self):
        for path in sorted((SOURCE / "lab" / "examples").glob("*.toml")):
            with self.subTest(path=path.name):
                topo = load_topology(str(path))
                self.assertEqual(len(topo.nodes), 2)
                self.assertTrue(topo.pods)


class Refused(unittest.TestCase):
    def refused(self, text: str, message: str) -> None:
        with self.assertRaises(LabError) as caught:
            parse_topology(text, "t.toml")
        self.assertEqual(str(caught.exception), message)

    def test_unknown_keys(self):
        self.refused(HEAD + 'cidr = "10.0.0.0/8"\n' + NODE,
                     "t.toml: unknown key 'cidr' (allowed: index, lease_ttl, modules, name, nodes, pods, routing, store)")
        self.refused(HEAD + NODE + 'ip = "192.168.1.1"\n', "t.toml: nodes[1]: unknown key 'ip' (allowed: name)")
        self.refused(HEAD + NODE + '[[pods]]\nname = "p"\nnode = "node1"\naddress = "10.1.1.5/24"\n',
                     "t.toml: pods[1]: unknown key 'address' (allowed: labels, name, namespace, node, ports)")

    def test_bad_modules(self):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "Bad.so").write_text("")
            (Path(folder) / "routing-vxlan.so").write_text("")
            source = f"{folder}/t.toml"

            def refused(value: str, message: str) -> None:
                with self.assertRaises(LabError) as caught:
                    parse_topology(HEAD + f"modules = {value}\n" + NODE, source)
                self.assertEqual(str(caught.exception), f"{source}: " + message)

            refused('"x.so"', "'modules' must be an array of module names or library paths, not 'x.so'")
            refused('["Bad.so"]', "modules[1]: 'Bad.so' must name a module (1 to 48 lower-case letters, digits and '-', "
                                  "starting with a letter or digit) or a module library <name>.so")
            refused('["Policy"]', "modules[1]: 'Policy' must name a module (1 to 48 lower-case letters, digits and '-', "
                                  "starting with a letter or digit) or a module library <name>.so")
            refused('["routing-vxlan.so"]', "modules[1]: 'routing-vxlan' is a routing module; 'routing' chooses it")
            refused('["gone.so"]', f"modules[1]: {Path(folder).resolve()}/gone.so does not exist (build the module first)")

    def test_missing_keys(self):
        self.refused('routing = "vxlan"\n' + NODE, "t.toml: missing key 'name'")
        self.refused(HEAD, "t.toml: missing key 'nodes'")
        self.refused(HEAD + NODE + '[[pods]]\nname = "p"\n', "t.toml: pods[1]: missing key 'node'")
        self.refused(HEAD + '[[nodes]]\n', "t.toml: nodes[1]: missing key 'name'")

    def test_index_out_of_range_or_not_an_integer(self):
        # The addresses (192.168.<index>.0/24, 10.<index>.<node>.0/24) are all derived from
        # the index: it is the one address input of a topology.
        for index in (0, 255, -1, 300):
            with self.subTest(index=index):
                self.refused(HEAD + f"index = {index}\n" + NODE,
                             f"t.toml: 'index' = {index} must be between 1 and 254")
        self.refused(HEAD + "index = true\n" + NODE, "t.toml: 'index' must be an integer, not True")
        self.refused(HEAD + 'index = "10.42.0.0/16"\n' + NODE,
                     "t.toml: 'index' must be an integer, not '10.42.0.0/16'")
        self.refused(HEAD + "index = 4.2\n" + NODE, "t.toml: 'index' must be an integer, not 4.2")

    def test_names(self):
        self.refused('name = "my-lab"\nrouting = "vxlan"\n' + NODE,
                     "t.toml: 'name' = 'my-lab' must be 1 to 12 lower-case letters or digits, starting with a "
                     "letter (no '-': it separates the lab from its members in names)")
        self.refused('name = "thirteenchars"\nrouting = "vxlan"\n' + NODE,
                     "t.toml: 'name' = 'thirteenchars' must be 1 to 12 lower-case letters or digits, starting "
                     "with a letter (no '-': it separates the lab from its members in names)")
        self.refused(HEAD + '[[nodes]]\nname = "Node1"\n',
                     "t.toml: nodes[1]: 'name' = 'Node1' must be 1 to 12 lower-case letters, digits or '-', "
                     "starting and ending with a letter or digit")
        self.refused(HEAD + '[[nodes]]\nname = "sw"\n',
                     "t.toml: nodes[1]: 'name' = 'sw' is reserved for the lab's switch namespace")
        self.refused(HEAD + '[[nodes]]\nname = "kv"\n',
                     "t.toml: nodes[1]: 'name' = 'kv' is reserved for the lab's etcd namespace")
        self.refused(HEAD + '[[nodes]]\nname = "ext"\n',
                     "t.toml: nodes[1]: 'name' = 'ext' is reserved for the lab's outside host namespace")
        self.refused(HEAD + NODE + NODE, "t.toml: nodes[2]: 'name' = 'node1' is already used by nodes[1]")
        self.refused(HEAD + NODE + '[[pods]]\nname = "node1"\nnode = "node1"\n',
                     "t.toml: pods[1]: 'name' = 'node1' is already used by nodes[1] (node and pod names share "
                     "the lab's namespace names)")

    def test_routing_and_nodes(self):
        self.refused('name = "demo"\nrouting = "bgp"\n' + NODE,
                     "t.toml: 'routing' = 'bgp' must be one of: vxlan, direct")
        self.refused(HEAD + "nodes = []\n", "t.toml: 'nodes' must list at least one node")
        self.refused(HEAD + 'nodes = "node1"\n', "t.toml: 'nodes' must be an array of tables ([[nodes]]), not 'node1'")
        self.refused(HEAD + NODE + '[[pods]]\nname = "p"\nnode = "node9"\n',
                     "t.toml: pods[1]: 'node' = 'node9' is not a node in [[nodes]] (node1)")

    def test_store(self):
        self.refused(HEAD + 'store = "consul"\n' + NODE, "t.toml: 'store' = 'consul' must be one of: etcd, static")
        self.refused(HEAD + 'store = "static"\nlease_ttl = 10\n' + NODE,
                     "t.toml: 'lease_ttl' is the nodes' etcd lease; it needs store = \"etcd\"")
        for ttl in (4, 3601):
            with self.subTest(ttl=ttl):
                self.refused(HEAD + f"lease_ttl = {ttl}\n" + NODE,
                             f"t.toml: 'lease_ttl' = {ttl} must be between 5 and 3600 seconds")
        self.refused(HEAD + 'lease_ttl = "30s"\n' + NODE,
                     "t.toml: 'lease_ttl' must be an integer (seconds), not '30s'")

    def test_labels_and_namespace(self):
        pod = HEAD + NODE + '[[pods]]\nname = "p"\nnode = "node1"\n'
        self.refused(pod + 'labels = { "-app" = "web" }\n',
                     "t.toml: pods[1]: labels: key '-app' is not a label key (letters, digits, '.', '_', '/', '-')")
        self.refused(pod + 'labels = { app = 7 }\n',
                     "t.toml: pods[1]: labels.app must be a string of at most 63 characters, not 7")
        self.refused(pod + 'labels = "app=web"\n',
                     "t.toml: pods[1]: 'labels' must be a table of strings, e.g. { app = \"web\" }, not 'app=web'")
        self.refused(pod + 'namespace = "Shop"\n',
                     "t.toml: pods[1]: 'namespace' = 'Shop' must be a DNS label (lower-case letters, digits, '-', "
                     "at most 63)")

    def test_ports(self):
        pod = HEAD + NODE + '[[pods]]\nname = "p"\nnode = "node1"\n'
        topo = parse_topology(pod + 'ports = [{ name = "http", port = 8080 }, { name = "dns", port = 53, protocol = "UDP" }]\n',
                              "t.toml")
        self.assertEqual(topo.pods[0].ports, [{"name": "http", "port": 8080, "protocol": "TCP"},
                                              {"name": "dns", "port": 53, "protocol": "UDP"}])
        self.refused(pod + 'ports = [{ name = "HTTP", port = 80 }]\n',
                     "t.toml: pods[1]: ports[1]: 'name' = 'HTTP' must be a port name (at most 15 of a-z, 0-9 and '-', "
                     "with a letter)")
        self.refused(pod + 'ports = [{ name = "http", port = 70000 }]\n',
                     "t.toml: pods[1]: ports[1]: 'port' = 70000 must be an integer from 1 to 65535")
        self.refused(pod + 'ports = [{ name = "http", port = 80, protocol = "tcp" }]\n',
                     "t.toml: pods[1]: ports[1]: 'protocol' = 'tcp' must be \"TCP\", \"UDP\" or \"SCTP\"")
        self.refused(pod + 'ports = [{ name = "http", port = 80 }, { name = "http", port = 81 }]\n',
                     "t.toml: pods[1]: ports[2]: the port name 'http' is already used by this pod")

    def test_not_toml(self):
        with self.assertRaises(LabError) as caught:
            parse_topology('name = "demo\n', "t.toml")
        # The rest is tomllib's own words.
        self.assertRegex(str(caught.exception), r"^t\.toml: not valid TOML: .*line 1")

    def test_unreadable_file(self):
        with tempfile.TemporaryDirectory() as folder:
            missing = str(Path(folder) / "none.toml")
            with self.assertRaises(LabError) as caught:
                load_topology(missing)
            self.assertEqual(str(caught.exception),
                             f"{missing}: cannot read the topology: No such file or directory")


if __name__ == "__main__":
    unittest.main()
