//! Small graph algorithms over named declarations: cycle detection and reachability, for
//! role inheritance, action groups and `let`s.
//!
//! The walks are iterative so that a long chain of `let`s cannot overflow the stack.

use super::Loc;

/// A directed graph whose nodes are `0..edges.len()`; each edge remembers where it is written.
pub(crate) struct Graph {
    pub edges: Vec<Vec<(usize, Loc)>>,
}

/// What a depth-first walk found.
#[allow(
    dead_code,
    reason = "post_order orders `let`s for typing, in the next commit"
)]
pub(crate) struct Walk {
    /// Every cycle, once: the nodes in order (the first repeated at the end) and the edge that
    /// closes it.
    pub cycles: Vec<(Vec<usize>, Loc)>,
    /// The nodes with each one after everything it reaches (edges that close a cycle aside).
    pub post_order: Vec<usize>,
}

impl Graph {
    pub fn new(nodes: usize) -> Graph {
        Graph {
            edges: vec![Vec::new(); nodes],
        }
    }

    pub(crate) fn add_edge(&mut self, from: usize, to: usize, at: Loc) {
        if let Some(edges) = self.edges.get_mut(from) {
            edges.push((to, at));
        }
    }

    pub fn walk(&self) -> Walk {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = self.edges.len();
        let mut marks = vec![Mark::New; n];
        let mut cycles = Vec::new();
        let mut post_order = Vec::with_capacity(n);
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 0..n {
            if marks.get(root) != Some(&Mark::New) {
                continue;
            }
            if let Some(mark) = marks.get_mut(root) {
                *mark = Mark::Open;
            }
            stack.push((root, 0));
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let edge = self.edges.get(node).and_then(|edges| edges.get(*next));
                let Some(&(target, at)) = edge else {
                    stack.pop();
                    if let Some(mark) = marks.get_mut(node) {
                        *mark = Mark::Done;
                    }
                    post_order.push(node);
                    continue;
                };
                *next += 1;
                match marks.get(target) {
                    Some(Mark::New) => {
                        if let Some(mark) = marks.get_mut(target) {
                            *mark = Mark::Open;
                        }
                        stack.push((target, 0));
                    }
                    Some(Mark::Open) => {
                        let start = stack.iter().position(|&(n, _)| n == target).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack
                            .get(start..)
                            .unwrap_or(&[])
                            .iter()
                            .map(|&(n, _)| n)
                            .collect();
                        cycle.push(target);
                        cycles.push((cycle, at));
                    }
                    _ => {}
                }
            }
        }
        Walk { cycles, post_order }
    }

    /// Every node reachable from `from` by one edge or more, `from` itself excluded.
    pub(crate) fn reachable(&self, from: usize) -> Vec<usize> {
        let mut seen = vec![false; self.edges.len()];
        let mut queue = vec![from];
        let mut found = Vec::new();
        while let Some(node) = queue.pop() {
            for &(target, _) in self.edges.get(node).map_or(&[][..], Vec::as_slice) {
                if target != from && seen.get(target) == Some(&false) {
                    if let Some(s) = seen.get_mut(target) {
                        *s = true;
                    }
                    found.push(target);
                    queue.push(target);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Span;

    fn at() -> Loc {
        Loc {
            file: 0,
            span: Span::default(),
        }
    }

    #[test]
    fn finds_each_cycle_once_and_orders_dependencies_first() {
        // 0 → 1 → 2 → 0, and 3 → 1
        let mut g = Graph::new(4);
        g.add_edge(0, 1, at());
        g.add_edge(1, 2, at());
        g.add_edge(2, 0, at());
        g.add_edge(3, 1, at());
        let walk = g.walk();
        assert_eq!(walk.cycles.len(), 1);
        assert_eq!(walk.cycles[0].0, vec![0, 1, 2, 0]);
        assert_eq!(walk.post_order, vec![2, 1, 0, 3]);
    }

    #[test]
    fn reachability_is_transitive_and_excludes_the_start() {
        let mut g = Graph::new(3);
        g.add_edge(0, 1, at());
        g.add_edge(1, 2, at());
        g.add_edge(2, 0, at());
        let mut r = g.reachable(0);
        r.sort_unstable();
        assert_eq!(r, vec![1, 2]);
        assert!(Graph::new(2).reachable(1).is_empty());
    }
}
