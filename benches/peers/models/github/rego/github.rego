package github

import rego.v1

default allow := false

rank := {"reader": 1, "triager": 2, "writer": 3, "maintainer": 4, "admin": 5}

needs := {
	"pull": 1, "fork": 1, "assign_issue": 2, "push": 3, "edit_issue": 3, "delete_issue": 4,
	"add_reader": 5, "add_triager": 5, "add_writer": 5, "add_maintainer": 5, "add_admin": 5,
}

issue := data.issues[input.resource.id] if input.resource.type == "Issue"

repo_id := input.resource.id if input.resource.type == "Repository"

repo_id := issue.repo if input.resource.type == "Issue"

repo := data.repos[repo_id]

# The subject and every team it is in, directly or through nested teams.
principals := {input.subject.id} | graph.reachable(data.team_parents, data.users[input.subject.id].teams)

# Every role rank the subject holds on the repository: bound to it or to one of its teams, or
# admin as an owner of the repository's organisation.
ranks contains rank[role] if {
	some p in principals
	some role in repo.roles[p]
}

ranks contains 5 if input.subject.id in data.orgs[repo.org].owners

level := max(ranks) if count(ranks) > 0

allow if level >= needs[input.action.name]

allow if {
	input.action.name in {"edit_issue", "delete_issue"}
	level >= 1
	issue.reporter == input.subject.id
}
