# The photo archive (Warden's policies/) in Rego. Default deny; any deny wins.
package photos

import rego.v1

default allow := false

allow if {
	grant
	not deny
}

# The service's clock: fixed by the harness and passed in the input (OPA would call
# time.now_ns(), which cannot be fixed per request here).
now_ns := input.now_ns

user := data.users[input.subject.id]

resource := data.photos[input.resource.id] if input.resource.type == "Photo"

resource := data.albums[input.resource.id] if input.resource.type == "Album"

# The resource and every album above it (`resource in Album::"x"` in Warden and Cedar).
resource_in := {input.resource.id} | graph.reachable(data.album_parents, resource.parents)

# The subject and every group it is in, directly or through nested groups.
principals := {{"type": "User", "id": input.subject.id}} | {{"type": "Group", "id": g} |
	some g in graph.reachable(data.group_parents, user.groups)
}

staff if {
	some p in principals
	p == {"type": "Group", "id": "staff"}
}

# Roles: held globally (user.roles) or bound on the resource or an album above it, to the
# user or a group it is in; then every role a held role inherits.
bound contains r if {
	some r in user.roles
}

bound contains b.role if {
	some a in resource_in
	some b in data.bindings[a]
	b.subject in principals
}

held := graph.reachable(data.role_inherits, bound)

weekdays := {"Monday": 1, "Tuesday": 2, "Wednesday": 3, "Thursday": 4, "Friday": 5, "Saturday": 6, "Sunday": 7}

paris_office_hours if {
	weekdays[time.weekday([now_ns, "Europe/Paris"])] <= 5
	[hour, _, _] := time.clock([now_ns, "Europe/Paris"])
	hour >= 9
	hour < 18
}

# --- denies

deny if user.suspended

deny if {
	input.action.name == "delete"
	not input.subject.properties.mfa
}

# --- role grants

grant if {
	input.action.name in {"view", "list"}
	"viewer" in held
}

grant if {
	input.action.name in {"comment", "upload"}
	"contributor" in held
}

grant if {
	input.action.name == "delete"
	input.resource.type == "Photo"
	"curator" in held
}

grant if {
	input.action.name == "archive"
	"curator" in held
	paris_office_hours
}

# --- rules

grant if {
	input.action.name == "view"
	input.resource.type == "Photo"
	data.albums[resource.album].public
}

grant if resource.owner == input.subject.id

grant if {
	input.action.name == "view"
	input.resource.type == "Photo"
	ticket := user.ticket
	ticket.album in resource_in
	now_ns < time.parse_rfc3339_ns(ticket.expires)
}

grant if {
	input.action.name == "list"
	staff
}

grant if {
	input.action.name == "export"
	staff
	net.cidr_contains("10.0.0.0/8", input.context.ip)
}
