"""The relay's marking rule, without a broker: which acknowledged rows may be marked."""

from dataclasses import dataclass

from shared.messaging.outbox import publishable_prefix


@dataclass(frozen=True)
class Row:
    id: int
    message_key: str


def marked(rows: list[Row], acked_ids: set[int]) -> list[int]:
    return publishable_prefix(rows, lambda row: row.id in acked_ids)


class TestPublishablePrefix:
    def test_everything_acknowledged_is_marked_in_order(self):
        rows = [Row(1, "a"), Row(2, "b"), Row(3, "a")]
        assert marked(rows, {1, 2, 3}) == [1, 2, 3]

    def test_an_unacknowledged_row_holds_back_every_later_row_of_its_key(self):
        # Row 3 was acknowledged (e.g. on another partition's batch) but row 1 of the same
        # complaint was not: marking 3 would publish the complaint's events out of order.
        rows = [Row(1, "a"), Row(2, "b"), Row(3, "a"), Row(4, "b")]
        assert marked(rows, {2, 3, 4}) == [2, 4]

    def test_rows_before_the_failure_of_their_key_are_marked(self):
        rows = [Row(1, "a"), Row(2, "a"), Row(3, "a")]
        assert marked(rows, {1, 3}) == [1]

    def test_nothing_acknowledged_marks_nothing(self):
        assert marked([Row(1, "a"), Row(2, "b")], set()) == []
