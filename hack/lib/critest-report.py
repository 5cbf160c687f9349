#!/usr/bin/env python3
"""Counts a critest run from its Ginkgo JSON report, for hack/critest.sh.

usage: critest-report.py REPORT.json RULES

RULES has one rule a line, tab-separated: KIND, a regular expression searched in the spec's full text, and
the reason. KIND is
  skip-by-name   the spec is left out on purpose (critest.sh passes these to -ginkgo.skip): counted skipped
  expected-skip  critest skips the spec itself (Skip() at run time) for a documented reason: counted skipped
  expected-fail  a known failure, clearly marked: counted skipped while it fails, and named when it passes
  focus          (reason unused) a -ginkgo.focus of the run: a skip-by-name spec counts only if one matches
Everything else counts as it ran: a failure (failed, panicked, timed out, interrupted, aborted) is a failure,
and so is a spec that skipped itself for a reason no rule expects. Benchmark specs (critest's own `benchmark`
filter) and specs a -ginkgo.focus/-ginkgo.skip left out are not counted.
Prints one line a spec, then the last line: "N passed, N failed, N skipped". Exits 1 when anything failed.
"""
import json
import re
import sys

FAILED_STATES = {"failed", "panicked", "timedout", "interrupted", "aborted"}


def load_rules(path):
    rules = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                kind, pattern, reason = line.split("\t", 2)
                rules.append((kind, re.compile(pattern), reason))
    return rules


def rule_for(rules, kind, text):
    return next((reason for k, rx, reason in rules if k == kind and rx.search(text)), None)


def focused(rules, text):
    focus = [rx for kind, rx, _ in rules if kind == "focus"]
    return not focus or any(rx.search(text) for rx in focus)


def summary(message):
    """The first line of a failure message, with the detail Gomega puts on a later line after "...:"."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[0]
    if head.endswith(":"):
        head += " " + next((line for line in lines[1:] if not line.startswith(("<", "{"))), "")
    return head[:300]


def main():
    report_path, rules_path = sys.argv[1], sys.argv[2]
    rules = load_rules(rules_path)
    with open(report_path, encoding="utf-8") as f:
        suites = json.load(f)

    passed = failed = skipped = 0
    notes = []
    for suite in suites:
        for spec in suite.get("SpecReports") or []:
            state = spec.get("State", "")
            message = summary((spec.get("Failure") or {}).get("Message"))
            node = spec.get("LeafNodeType", "")
            text = " ".join((spec.get("ContainerHierarchyTexts") or []) + [spec.get("LeafNodeText") or ""]).strip()
            if node != "It":
                # BeforeSuite, AfterSuite, ReportAfterSuite ...: only their failures matter.
                if state in FAILED_STATES:
                    failed += 1
                    print(f"FAIL   [{node}] {message}")
                continue
            if re.search("benchmark", text):
                continue
            seconds = spec.get("RunTime", 0) / 1e9
            if state == "passed":
                passed += 1
                print(f"ok     {text} ({seconds:.1f}s)")
                if reason := rule_for(rules, "expected-fail", text):
                    notes.append(f"expected to fail but passed, remove its expected-fail rule: {text}")
                elif rule_for(rules, "expected-skip", text):
                    notes.append(f"expected to skip but ran and passed, remove its expected-skip rule: {text}")
            elif state in FAILED_STATES:
                if reason := rule_for(rules, "expected-fail", text):
                    skipped += 1
                    print(f"XFAIL  {text}: {message} [expected failure: {reason}]")
                else:
                    failed += 1
                    print(f"FAIL   {text} ({seconds:.1f}s): {message}")
            elif state == "skipped":
                if (reason := rule_for(rules, "skip-by-name", text)) and focused(rules, text):
                    skipped += 1
                    print(f"skip   {text} [skipped by name: {reason}]")
                elif not message:
                    continue  # not selected by -ginkgo.focus / -ginkgo.skip: not part of this run
                elif reason := rule_for(rules, "expected-skip", text):
                    skipped += 1
                    print(f"skip   {text}: {message} [expected: {reason}]")
                else:
                    failed += 1
                    print(f"FAIL   {text}: skipped itself, and no rule expects that: {message}")
            else:  # pending, or a state this script does not know: never silently fine
                failed += 1
                print(f"FAIL   {text}: state {state!r}")
    for note in notes:
        print(f"note: {note}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
