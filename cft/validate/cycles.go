package validate

import (
	"strings"
)

// Dependency cycles among conditions and among resources.

func cycleFrom(stack []string, start string) []string {
	for i, n := range stack {
		if n == start {
			out := append([]string{}, stack[i:]...)
			return append(out, start)
		}
	}
	return []string{start, start}
}

// cycles reports every circle of resources that depend on each other, once, with its path.
func (c *checker) cycles() {
	order := make([]string, len(c.t.Resources))
	for i, r := range c.t.Resources {
		order[i] = r.Name
	}
	inCycle := map[string]bool{}
	findCycles(order, c.graph, func(cycle []string) {
		fresh := false
		for _, x := range cycle {
			if !inCycle[x] {
				fresh = true
			}
			inCycle[x] = true
		}
		if fresh {
			m := cycle[0]
			c.errorf(at{secResources, c.resourceIndex(m), m}, "", RuleCycle, "circular dependency: %s", strings.Join(cycle, " -> "))
		}
	})
}

// findCycles walks graph depth first from each node of order and calls found with the path of
// every back edge: a circle that starts and ends at the same node.
func findCycles(order []string, graph map[string][]string, found func(cycle []string)) {
	state := map[string]int{} // 0 new, 1 on the stack, 2 done
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		state[n] = 1
		stack = append(stack, n)
		for _, m := range graph[n] {
			switch state[m] {
			case 0:
				visit(m)
			case 1:
				found(cycleFrom(stack, m))
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
	}
	for _, n := range order {
		if state[n] == 0 {
			visit(n)
		}
	}
}

func (c *checker) resourceIndex(name string) int {
	for i, r := range c.t.Resources {
		if r.Name == name {
			return i
		}
	}
	return 0
}
