"""Containers that remember what changed in them, so that a save of the emulator's state (persistence.py)
writes only that. Each refuses the operations whose change it could not name."""

from typing import Any


class Tracked(dict):
    """A dict that remembers the keys whose entries may have changed: set, removed, or handed out (an entry
    is a mutable dict its holder may change in place). Iterating values or items hands out every entry. A
    handler changes an entry between its awaits, not across one: a save in between would take the key.

    `nested`: fields of the entries holding tracked containers (a segment's members), saved by their own
    changes rather than whole with the entry."""

    def __init__(self, *args: Any, nested: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.touched: set[Any] = set()
        self.nested = nested
        self.fresh = True  # never saved: its `touched` says nothing yet

    def __getitem__(self, key: Any) -> Any:
        self.touched.add(key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.touched.add(key)
        return dict.get(self, key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        self.touched.add(key)
        return dict.pop(self, key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.touched.add(key)
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        other = dict(*args, **kwargs)
        self.touched.update(other)
        dict.update(self, other)

    def values(self) -> Any:
        self.touched.update(dict.keys(self))
        return dict.values(self)

    def items(self) -> Any:
        self.touched.update(dict.keys(self))
        return dict.items(self)

    def peek_values(self) -> Any:
        """The entries, for reading only: a change made through them is not saved."""
        return dict.values(self)

    def popitem(self) -> Any:
        raise TypeError("Tracked does not support popitem")

    def __ior__(self, other: Any) -> Any:
        raise TypeError("Tracked does not support |=: use update")

    def clear(self) -> None:
        raise TypeError("Tracked does not support clear: replace it")


class TrackedSet(set):
    """A set that remembers the elements added or removed."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.touched: set[Any] = set()
        self.fresh = True

    def add(self, element: Any) -> None:
        self.touched.add(element)
        set.add(self, element)

    def discard(self, element: Any) -> None:
        self.touched.add(element)
        set.discard(self, element)

    def remove(self, element: Any) -> None:
        self.touched.add(element)
        set.remove(self, element)

    def update(self, *others: Any) -> None:
        for other in others:
            for element in other:
                self.add(element)

    def _refused(self, *args: Any) -> Any:
        raise TypeError("a TrackedSet changes only through add, discard, remove and update")

    pop = difference_update = intersection_update = symmetric_difference_update = _refused
    __ior__ = __isub__ = __iand__ = __ixor__ = _refused

    def clear(self) -> None:
        raise TypeError("TrackedSet does not support clear: replace it")


class TrackedList(list):
    """An append-only list whose entries change only by assignment (`log[i] = entry`), which it remembers;
    anything else that would reorder or remove entries is refused rather than lost from the journal."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.touched: set[int] = set()
        self.fresh = True

    def __setitem__(self, index: Any, value: Any) -> None:
        if not isinstance(index, int):
            raise TypeError("TrackedList assigns one entry at a time")
        index = index % len(self) if index < 0 else index
        self.touched.add(index)
        list.__setitem__(self, index, value)

    def _refused(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a TrackedList only appends and assigns entries")

    insert = pop = remove = clear = sort = reverse = __delitem__ = __iadd__ = __imul__ = _refused
