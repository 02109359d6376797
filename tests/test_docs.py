"""Every code sample of README.md and docs/**/*.md, run as a reader would (tests/docs_samples.py
says how each kind of block is run or checked). A failing sample fails with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from tests.docs_samples import REPO, Page, World, blocks, is_excerpt, matches

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = World.create(tmp_path_factory.mktemp("docs-world"))
    try:
        yield world
    finally:
        world.close()


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(REPO)))
def test_page_samples(world: World, page: Path) -> None:
    Page(world, page).run()


def test_the_pages_are_found() -> None:
    """The pages are found (a rename of docs/ would otherwise test nothing)."""
    assert len(PAGES) >= 12
    assert sum(len(blocks(page)) for page in PAGES) >= 40


def _fails(tmp_path: Path, markdown: str, message: str) -> None:
    """A page of these samples, run in a bare world, fails with this message."""
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent(markdown))
    with pytest.raises(pytest.fail.Exception, match=message):
        Page(World(tmp_path, {"PATH": "/usr/bin:/bin"}), page, root=tmp_path).run()


def test_a_failing_sample_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    _fails(tmp_path, """\
        # A page

        ```bash
        true
        ```

        Then:

        ```bash
        echo about to fail; false
        ```
        """, r"page\.md:9: bash sample failed: exited with 1")


def test_a_console_answer_that_differs_fails(tmp_path: Path) -> None:
    _fails(tmp_path, """\
        ```console
        $ echo '{"a": 1}'
        {"a": 1}
        $ false; echo "exit $?"
        exit 1
        $ echo 2
        3
        ```
        """, r"page\.md:1: .*`echo 2` printed something else")


def test_python_blocks_share_a_namespace_and_fail_on_their_line(tmp_path: Path) -> None:
    _fails(tmp_path, """\
        ```python
        x = 2
        ```

        ```python
        assert x == 2
        assert x == 3
        ```
        """, r'page\.md", line 7')


@pytest.mark.parametrize(("markdown", "message"), [
    ("```\nls\n```\n", "unknown language ''"),
    ("```yaml\na: 1\n```\n", "must name the file"),
    ('```yaml title="other.yml"\na: 1\n```\n', "other.yml: no such file"),
    ("```json\n{nope\n```\n", "not JSON"),
    ("```pycon\n>>> 1 + 1\n3\n```\n", "Expected:\\s+3"),
])
def test_blocks_that_are_wrong_fail(tmp_path: Path, markdown: str, message: str) -> None:
    _fails(tmp_path, markdown, message)


def test_output_and_excerpt_matching() -> None:
    assert matches("a\n...\nz", "a\nb\nc\nz\n")
    assert matches('{"n": ...}', '{"n": 12}')
    assert not matches("a\nz", "a\nb\nz")
    text = "models:\n  - name: a\n    config:\n      x: 1\n      y: 2\n  - name: b\n"
    assert is_excerpt("- name: a\n  config:\n    x: 1\n", text)
    assert is_excerpt("- name: a\n  # ...\n    y: 2\n", text)
    assert not is_excerpt("- name: a\n    y: 2\n", text)
    assert not is_excerpt("- name: c\n", text)
