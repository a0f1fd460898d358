"""What the tests (and bench/) share: free ports, emulators, a sync in a child process, warehouse helpers,
the destination harnesses and the crash invariants. One concern per module; pytest collects none of them.

Test files import it as `support` (pytest puts tests/ on sys.path); bench/ scripts put tests/ there first.
"""
