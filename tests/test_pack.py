"""sinks.destinations.base.pack: how changes are cut into requests. Pure: no process, no network."""

from sinks.destinations.base import pack


def packs(items, **limits) -> list[list]:
    return list(pack(items, **limits))


def test_a_pack_holds_at_most_max_items():
    assert packs(range(7), max_items=3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_nothing_to_pack_gives_no_pack():
    assert packs([], max_items=3) == []


def test_a_pack_holds_at_most_max_bytes():
    words = ["aaaa", "bb", "cccc", "d", "eeeeee"]
    assert packs(words, max_items=100, max_bytes=6, size=len) == [["aaaa", "bb"], ["cccc", "d"], ["eeeeee"]]


def test_whichever_limit_is_met_first_closes_the_pack():
    words = ["a", "b", "c", "dddd", "e"]
    assert packs(words, max_items=3, max_bytes=5, size=len) == [["a", "b", "c"], ["dddd", "e"]]


def test_an_item_over_the_byte_limit_travels_alone_for_the_adapter_to_refuse():
    words = ["aa", "x" * 50, "bb"]
    assert packs(words, max_items=10, max_bytes=10, size=len) == [["aa"], ["x" * 50], ["bb"]]


def test_order_is_kept_across_packs():
    items = [f"item{i}" for i in range(25)]
    result = packs(items, max_items=4, max_bytes=20, size=len)
    assert [item for p in result for item in p] == items
    assert all(len(p) <= 4 and sum(map(len, p)) <= 20 for p in result)


def test_a_group_is_never_split_across_two_packs():
    items = ["a1", "a2", "b1", "b2", "b3", "c1"]
    assert packs(items, max_items=4, group=lambda item: item[0]) == [["a1", "a2"], ["b1", "b2", "b3", "c1"]]


def test_a_group_larger_than_a_pack_is_split_by_count():
    items = ["a1", "b1", "b2", "b3", "b4", "b5", "c1"]
    assert packs(items, max_items=2, group=lambda item: item[0]) == [
        ["a1"], ["b1", "b2"], ["b3", "b4"], ["b5"], ["c1"]]
