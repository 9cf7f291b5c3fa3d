package tinytodo

import rego.v1

default allow := false

allow if {
	grant
	not deny
}

# Every team the subject is in, directly or through nested teams.
teams := graph.reachable(data.team_parents, data.users[input.subject.id].teams)

list := data.lists[input.resource.id] if input.resource.type == "List"

edit_tasks := {"update_list", "create_task", "update_task", "delete_task"}

grant if input.action.name in {"create_list", "get_lists"}

grant if list.owner == input.subject.id

grant if {
	input.action.name == "get_list"
	list.readers in teams
}

grant if {
	input.action.name == "get_list"
	list.editors in teams
}

grant if {
	input.action.name in edit_tasks
	list.editors in teams
}

deny if {
	input.action.name == "create_list"
	"interns" in teams
}
