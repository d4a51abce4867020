"""membrane-lab: a whole Membrane cluster on one machine.

A topology file (TOML) names the lab, its routing mode, its nodes and its pods.
`up` makes, for each node, a network namespace running its own membraned (own
config, own private dbus-daemon, own pin folder on a bpffs under /run), joins
the nodes by an underlay (a bridge inside a "switch" namespace, one veth per
node), and wires each pod namespace with the real membrane-cni, called exactly
as a container runtime calls it. Everything lives in namespaces the lab made;
nothing is routed out of the machine and the host's links and routes are never
touched. `down` removes all of it, also after a crash or a half-finished `up`.

Naming (all derived from the lab name, which is [a-z][a-z0-9]*, no '-', so that
one lab's prefix is never another's):
  namespaces      ml-<lab>-<node>, ml-<lab>-<pod>, ml-<lab>-sw (the switch)
  lab folder      /run/membrane-lab/<lab>/  (record, configs, logs, buses, bpffs)
  underlay        192.168.<n>.<i>/24 on eth0 of node i (1-based, file order)
  pod CIDR        10.<n>.<i>.0/24 for node i (gateway 10.<n>.<i>.1)
where n is the lab's number: `index` in the topology, else derived from the name.

One concern a module:
  errors     LabError (a message for the user) and log()
  names      constants, name rules, and every name and address derived from the lab's
  topology   the topology file: TOML parsed and validated into a Topology
  processes  running commands, detached processes, bounded waits
  record     the lab's record (lab.json): Lab
  binaries   where membraned, membranectl, membrane-cni and the modules come from
  wiring     the kernel plumbing: namespaces, bpffs, underlay, baseline links and routes
  daemons    per node: membrane.toml, the private dbus-daemon, membraned, readiness
  pods       pods added and deleted through membrane-cni (or baseline wiring)
  lifecycle  bring a lab up, take one down (also after a crash)
  status     what a running lab looks like (`status`)
  cli        the command line (argparse, subcommands, output)

Only the Python 3.11 standard library is used.
"""
