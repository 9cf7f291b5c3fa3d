#!/usr/bin/env python3
"""Writes a generated policy directory of one shape and size, for the loading benches.

    benches/gen_shapes.py SHAPE N DIR

Shapes (each file is what the shape's name says, and nothing else grows with N):

- role-chain:     N roles, each inheriting the one before it, one grant each
- group-chain:    N groups, each the parent of the next (a hierarchy N deep), one user below
- bad-role:       N users whose stored `roles` name a role that is not declared
- entities:       N ordinary users spread over 1,000 groups
- rules:          N top-level grants `allow ... if resource in Album::"aK" and ...`
- role-rules:     the same N grants written inside `role` blocks (10 roles)
- bindings:       the same grants as data: N role bindings (10 per album)

`benches/load_shapes.sh` runs the shapes at several sizes and prints the table in
BENCHMARKS.md. Generated directories belong in /tmp, not in git.
"""

import json
import os
import sys

SCHEMA = """entity Group in Group
entity User in Group { department: String, clearance: Int, roles: Set<String> }
entity Album in Album { department: String }
entity Photo in Album { album: Album }
action view, edit, share, delete, admin on Photo
"""

# Five nested roles (each inherits the one before) and five nested actions.
LEVELS = ["viewer", "editor", "sharer", "deleter", "admin"]
ACTIONS = ["view", "edit", "share", "delete", "admin"]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write(text)


def entities_file(entities):
    # One entity a line: a readable file that streams like the real ones do.
    lines = ",\n".join("  " + json.dumps(e, separators=(",", ":")) for e in entities)
    return '{"entities": [\n' + lines + "\n]}\n"


def user(uid, roles=(), parents=()):
    return {
        "type": "User",
        "id": uid,
        "attributes": {"department": "d%d" % (sum(map(ord, uid)) % 10), "clearance": 3, "roles": list(roles)},
        "parents": list(parents),
    }


def albums(count):
    out = []
    for a in range(count):
        out.append({"type": "Album", "id": "a%d" % a, "attributes": {"department": "d%d" % (a % 10)}})
        out.append({"type": "Photo", "id": "p%d" % a, "attributes": {"album": "a%d" % a}, "parents": ["a%d" % a]})
    return out


def role_chain(n, d):
    lines = [SCHEMA, "role r0 {\n  allow view\n}\n"]
    for i in range(1, n):
        lines.append("role r%d : r%d {\n  allow %s if subject.clearance >= %d\n}\n" % (i, i - 1, ACTIONS[i % 5], i % 7))
    write(os.path.join(d, "policy.warden"), "".join(lines))
    write(os.path.join(d, "data", "entities.json"),
          entities_file([user("u1", ["r%d" % (n - 1)])] + albums(1)))


def group_chain(n, d):
    ents = []
    for i in range(n):
        g = {"type": "Group", "id": "g%d" % i}
        if i > 0:
            g["parents"] = ["g%d" % (i - 1)]
        ents.append(g)
    ents.append(user("u1", [], ["g%d" % (n - 1)]))
    ents += albums(1)
    write(os.path.join(d, "policy.warden"), SCHEMA + 'allow view if subject in Group::"g0"\n')
    write(os.path.join(d, "data", "entities.json"), entities_file(ents))


def bad_role(n, d):
    ents = [user("u%d" % i, ["no-such-role"]) for i in range(n)]
    write(os.path.join(d, "policy.warden"), SCHEMA + "role viewer {\n  allow view\n}\n")
    write(os.path.join(d, "data", "entities.json"), entities_file(ents))


def entities(n, d):
    groups = [{"type": "Group", "id": "g%d" % g} for g in range(1000)]
    users = [user("u%d" % i, [], ["g%d" % (i % 1000)]) for i in range(n)]
    write(os.path.join(d, "policy.warden"), SCHEMA + 'allow view if subject in Group::"g1"\n')
    write(os.path.join(d, "data", "entities.json"), entities_file(groups + users + albums(1)))


def grant(k, scoped):
    """Grant k: a level, a department and a clearance on album k // 10."""
    level = k % 5
    action_list = ", ".join(ACTIONS[: level + 1])
    album = k // 10
    cond = 'resource in Album::"a%d" and subject.department == "d%d" and subject.clearance >= %d' % (
        album, k % 10, k % 4)
    if scoped:
        return "  allow %s if %s\n" % (action_list, cond)
    head, rest = cond.split(" and ", 1)
    return 'allow %s if %s and subject.roles contains "%s" and %s\n' % (
        action_list, head, LEVELS[level], rest)


def grant_users():
    return [user("u%d" % i, [LEVELS[i % 5]]) for i in range(100)]


def rules(n, d):
    write(os.path.join(d, "policy.warden"), SCHEMA + 'deny * if subject.clearance < 0\n' + "".join(grant(k, False) for k in range(n)))
    write(os.path.join(d, "data", "entities.json"), entities_file(grant_users() + albums(max(1, n // 10))))


def role_rules(n, d):
    blocks = {lvl: [] for lvl in range(5)}
    for k in range(n):
        blocks[k % 5].append(grant(k, True))
    text = [SCHEMA, 'deny * if subject.clearance < 0\n']
    for lvl, name in enumerate(LEVELS):
        parent = " : %s" % LEVELS[lvl - 1] if lvl > 0 else ""
        text.append("role %s%s {\n%s}\n" % (name, parent, "".join(blocks[lvl]) or "  allow view if false\n"))
    write(os.path.join(d, "policy.warden"), "".join(text))
    write(os.path.join(d, "data", "entities.json"), entities_file(grant_users() + albums(max(1, n // 10))))


def bindings(n, d):
    text = [SCHEMA, 'deny * if subject.clearance < 0\n']
    for lvl, name in enumerate(LEVELS):
        parent = " : %s" % LEVELS[lvl - 1] if lvl > 0 else ""
        text.append("role %s%s {\n  allow %s\n}\n" % (name, parent, ACTIONS[lvl]))
    write(os.path.join(d, "policy.warden"), "".join(text))
    users = [user("u%d" % i, []) for i in range(100)]
    roles = [{"role": LEVELS[k % 5], "subject": {"type": "User", "id": "u%d" % (k % 100)},
              "on": {"type": "Album", "id": "a%d" % (k // 10)}} for k in range(n)]
    write(os.path.join(d, "data", "entities.json"), entities_file(users + albums(max(1, n // 10))))
    write(os.path.join(d, "data", "roles.json"), json.dumps({"roles": roles}, indent=0))


SHAPES = {
    "role-chain": role_chain,
    "group-chain": group_chain,
    "bad-role": bad_role,
    "entities": entities,
    "rules": rules,
    "role-rules": role_rules,
    "bindings": bindings,
}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in SHAPES:
        sys.exit("usage: gen_shapes.py {%s} N DIR" % "|".join(SHAPES))
    SHAPES[sys.argv[1]](int(sys.argv[2]), sys.argv[3])
