"""The provisioner: Ansible-style inventory, plays, roles and task modules, run over SSH with Fabric.

    kfab up -i INVENTORY [site.yml] [-e k=v|@file.yml] [--limit PATTERN] [--tags a,b] [--check] [--diff]
            [-v|-vv] [--forks N] [--fail-fast]

Flow: load and check everything first (inventory.py, playbook.py, roles.py, preflight.py) — a bad
inventory, play file, role, template or an undefined variable stops the run before any host is
contacted (exit 1). Then runner.py opens one Fabric connection per host (ssh.py: host keys checked
against `kfab_known_hosts_file`, default ~/.ssh/known_hosts; `kfab_host_key_checking: accept-new` for
trust on first use), gathers facts once (facts.py), and runs each play's roles on its hosts in parallel.
Exit codes: 0 ok, 1 invalid input (nothing ran), 2 a host failed, 4 a host was unreachable.

Variables a task sees (lowest precedence first; variables.py, context.py):
  role defaults < inventory-file group vars < group_vars/all < group_vars/<group> (parents first)
  < inventory-file host vars < host_vars/<host> < play vars < role vars/main.yml < role-entry vars
  < registered results
  < extra vars (-e) < magic names < loop `item`.
Magic names: inventory_hostname, group_names, groups, hostvars, inventory_dir, inventory_file,
kfab_check_mode, role_path, role_name, and `kfab_facts` (os_id, os_version, os_codename, arch, kernel,
cpus, memory_mb, hostname, default_ipv4, default_interface, init, bridge_nf, user).
Inventory variables kfab reads: ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file
(relative paths: from the inventory's directory), kfab_known_hosts_file, kfab_host_key_checking
(strict | accept-new), kfab_ssh_timeout (seconds, default 10).

Task keys: name, <module>, when, loop, register, notify, tags, become, changed_when, failed_when,
ignore_errors, vars. Modules (modules/): package, template, copy, file, line, sysctl, service,
command, shell, wait_for, user, hostname, venv (a Python venv filled from a local wheelhouse).
"""
