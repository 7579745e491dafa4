"""Response tries exactly as Lee et al. (2024)'s ``ngrams.py`` / ``gather_tree_stats.py`` fold them
(the ``lee2024`` metric profile), made deterministic and fast.

The reference, read for its rules (its code is not copied):

- replies are token lists (``word_tokenize``, case and punctuation kept);
- each round counts every n-gram, n ≥ 2, of every reply, **overlapping occurrences included**;
  when no n-gram occurs twice the folding stops;
- the weight of an n-gram is n·count; the n-gram folded is the heaviest; among equally heavy ones
  the shortest, and among those the one met first when counting (reply by reply, n by n, left to
  right: the smallest (first reply holding it, position in that reply));
- folding a span in a reply is a **string** operation: the reply's tokens are joined by spaces,
  every occurrence of the span's space-joined text is replaced (``str.replace``, which also hits
  text inside longer tokens: "I am" in "I amazed") by the span's name ``span_<16 digits>``, and the
  result is tokenised again; only replies holding the span as tokens are touched;
- statistics: templates = distinct folded replies; total nodes = nodes of the prefix trie of the
  folded replies, root included; root children; span nodes = distinct tokens starting with
  ``span_`` reachable from the folded replies through the span table (recursively);
  compression ratio = trie nodes folded / unfolded; unique start words = distinct first tokens.

Lee's span names come from Python's salted ``hash()``, so reruns differ wherever a name's digits
take part in a raw-string match; here the digits are the first 16 decimal digits of the SHA-256
of the span, so a run is reproducible. Counting is incremental: after a fold only the n-grams of
the changed replies that are not entirely inside the unchanged prefix or suffix are recounted,
which equals Lee's full recount (``tests/test_metrics_lee_tries.py`` checks it against a direct
transcription of the rules on random input).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Sequence
from typing import Any

Gram = tuple[str, ...]
Tokenize = Callable[[str], Sequence[str]]


def span_name(span: Gram) -> str:
    """``span_`` + 16 digits (Lee: ``str(hash("__".join(span)))[1:17]``; here from SHA-256)."""
    digest = int.from_bytes(hashlib.sha256("__".join(span).encode("utf-8")).digest()[:8], "big")
    return "span_" + f"{digest % 10**16:016d}"


def trie_nodes(seqs: Sequence[Sequence[str]]) -> tuple[int, int]:
    """(nodes of the prefix trie, root included — 1 for an empty trie, as Lee's ``num_nodes`` —,
    children of the root)."""
    uniq = sorted({tuple(s) for s in seqs if s})
    nodes = 1
    prev: Gram = ()
    for s in uniq:
        lcp = 0
        for a, b in zip(prev, s, strict=False):
            if a != b:
                break
            lcp += 1
        nodes += len(s) - lcp
        prev = s
    return nodes, len({s[0] for s in uniq})


def _find(seq: Gram, g: Gram) -> int:
    n = len(g)
    first = g[0]
    for i in range(len(seq) - n + 1):
        if seq[i] == first and seq[i:i + n] == g:
            return i
    return -1


def _changed(s: Gram, p: int, q: int) -> list[Gram]:
    """n-grams (n ≥ 2, with multiplicity) of ``s`` not entirely inside its first ``p`` or last
    ``q`` tokens."""
    L = len(s)
    out: list[Gram] = []
    tail = L - q
    for i in range(min(p, L)):
        for j in range(max(i + 2, p + 1), L + 1):
            out.append(s[i:j])
    for i in range(p, tail):
        for j in range(i + 2, L + 1):
            out.append(s[i:j])
    return out


class LeeFolder:
    """The folding state of one system's replies."""

    def __init__(self, token_lists: Sequence[Sequence[str]], tokenize: Tokenize) -> None:
        self.tokenize = tokenize
        self.seqs: list[Gram] = [tuple(t) for t in token_lists]
        self.count: dict[Gram, int] = {}
        self.where: dict[str, set[int]] = {}
        self.hashmap: dict[str, Gram] = {}
        self.folds = 0
        self.reused_names = 0
        for k, s in enumerate(self.seqs):
            for g in _changed(s, 0, 0):
                self.count[g] = self.count.get(g, 0) + 1
            for t in s:
                self.where.setdefault(t, set()).add(k)
        self.heap: list[tuple[int, int, Gram]] = [(-len(g) * c, len(g), g) for g, c in self.count.items() if c >= 2]
        heapq.heapify(self.heap)

    def holders(self, g: Gram) -> list[tuple[int, int]]:
        """(reply, first position) of every reply holding ``g`` as tokens, in reply order."""
        sets = [self.where.get(t, set()) for t in set(g)]
        if not all(sets):
            return []
        cand = min(sets, key=len)
        out = []
        for k in sorted(cand):
            pos = _find(self.seqs[k], g)
            if pos >= 0:
                out.append((k, pos))
        return out

    def _pop_valid(self) -> tuple[int, int, Gram] | None:
        while self.heap:
            negw, n, g = heapq.heappop(self.heap)
            c = self.count.get(g, 0)
            if c * n == -negw:
                return negw, n, g
            if c >= 2 and c * n < -negw:  # the count fell: requeue with its weight now
                heapq.heappush(self.heap, (-n * c, n, g))
            # a count that rose has a fresher entry already: drop this one
        return None

    def next_span(self) -> tuple[Gram, list[tuple[int, int]]] | None:
        top = self._pop_valid()
        if top is None:
            return None
        ties = [top]
        while self.heap and self.heap[0][:2] == top[:2]:
            nxt = self._pop_valid()
            if nxt is None:
                break
            if nxt[:2] != top[:2]:
                heapq.heappush(self.heap, nxt)
                break
            ties.append(nxt)
        best: tuple[tuple[int, int], Gram, list[tuple[int, int]]] | None = None
        for _, _, g in ties:
            hold = self.holders(g)
            if not hold:  # cannot happen while counts are right; keep going rather than loop
                continue
            key = hold[0]
            if best is None or key < best[0]:
                best = (key, g, hold)
        for entry in ties:
            if best is None or entry[2] != best[1]:
                heapq.heappush(self.heap, entry)
        return None if best is None else (best[1], best[2])

    def _update(self, k: int, old: Gram, new: Gram) -> dict[Gram, int]:
        p = 0
        m = min(len(old), len(new))
        while p < m and old[p] == new[p]:
            p += 1
        q = 0
        while q < m - p and old[-1 - q] == new[-1 - q]:
            q += 1
        delta: dict[Gram, int] = {}
        for g in _changed(old, p, q):
            delta[g] = delta.get(g, 0) - 1
        for g in _changed(new, p, q):
            delta[g] = delta.get(g, 0) + 1
        for t in set(old) - set(new):
            self.where[t].discard(k)
        for t in set(new) - set(old):
            self.where.setdefault(t, set()).add(k)
        return delta

    def fold(self, span: Gram, holders: list[tuple[int, int]]) -> None:
        name = span_name(span)
        if name in self.hashmap:
            self.reused_names += 1  # Lee's code stops here ("Hash collision!"); keep the first entry
        else:
            self.hashmap[name] = span
        text = " ".join(span)
        total: dict[Gram, int] = {}
        for k, _ in holders:
            old = self.seqs[k]
            new = tuple(self.tokenize(" ".join(old).replace(text, name)))
            if new == old:
                continue
            self.seqs[k] = new
            for g, d in self._update(k, old, new).items():
                if d:
                    total[g] = total.get(g, 0) + d
        for g, d in total.items():
            c = self.count.get(g, 0) + d
            if c <= 0:
                self.count.pop(g, None)
            else:
                self.count[g] = c
                if d > 0 and c >= 2:
                    heapq.heappush(self.heap, (-len(g) * c, len(g), g))
        self.folds += 1

    def run(self) -> None:
        while True:
            nxt = self.next_span()
            if nxt is None:
                return
            self.fold(*nxt)

    def span_nodes(self) -> int:
        seen: set[str] = set()
        stack = [t for s in self.seqs for t in s]
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in self.hashmap:
                stack.extend(self.hashmap[t])
        return sum(1 for t in seen if t.startswith("span_"))


def lee_tries(texts: Sequence[str], tokenize: Tokenize) -> dict[str, Any]:
    """Lee et al.'s response-trie statistics of one system's replies (see the module docstring)."""
    tokens = [tuple(tokenize(t)) for t in texts]
    before, _ = trie_nodes(tokens)
    starts = len({t[0] for t in tokens if t})
    folder = LeeFolder(tokens, tokenize)
    folder.run()
    after, root_children = trie_nodes(folder.seqs)
    n = len(texts)
    templates = len({s for s in folder.seqs})
    return {"responses": n, "templates": templates, "template_share": templates / n if n else 0.0,
            "unique_responses": len(set(texts)), "total_nodes": after, "span_nodes": folder.span_nodes(),
            "span_share": folder.span_nodes() / after if after else 0.0, "root_children": root_children,
            "root_children_share": root_children / n if n else 0.0, "nodes_before": before,
            "compression_ratio": after / before if before else 0.0, "unique_start_words": starts,
            "folds": folder.folds, "reused_span_names": folder.reused_names}
