"""How documents are named in citations: relative to the folder ingested, never a server path."""

from __future__ import annotations

from pathlib import Path

from functions.knowledge.ingest import public_source, walk


def test_a_folder_outside_the_working_directory_is_named_from_its_own_name(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "outside" / "handbook"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "leave.md").write_text("# Leave\n\nTen days.\n")
    (docs / "travel.md").write_text("# Travel\n\nBy train.\n")
    work = tmp_path / "work"
    work.mkdir()
    items, _, _ = walk([docs, docs / "travel.md"], root=work)
    assert [i.source for i in items] == ["handbook/hr/leave.md", "handbook/travel.md", "travel.md"]
    inside, _, _ = walk([docs], root=tmp_path / "outside")
    assert [i.source for i in inside] == ["handbook/hr/leave.md", "handbook/travel.md"]
    assert not any(str(tmp_path) in i.source for i in items + inside)


def test_a_stored_absolute_path_is_shown_as_its_file_name() -> None:
    assert public_source("/tmp/pytest-1/docs/leave.md") == "leave.md"
    assert public_source("C:\\Users\\ops\\docs\\leave.md") == "leave.md"
    assert public_source("\\\\server\\share\\leave.md") == "leave.md"
    assert public_source("docs/leave.md") == "docs/leave.md"
    assert public_source("upload/leave.md") == "upload/leave.md"


def test_two_files_of_one_name_are_both_accounted_for_and_links_are_named_in_place(
    tmp_path: Path,
) -> None:
    hr, it = tmp_path / "hr" / "docs", tmp_path / "it" / "docs"
    for folder in (hr, it):
        folder.mkdir(parents=True)
        (folder / "leave.md").write_text(f"# Leave\n\n{folder}\n")
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("# Elsewhere\n")
    (hr / "linked.md").symlink_to(elsewhere)  # a link inside the folder, to a file outside
    work = tmp_path / "work"
    work.mkdir()
    items, _, failed = walk([hr, it], root=work)
    assert [i.source for i in items] == ["docs/leave.md", "docs/linked.md"]
    assert [(f.source, f.reason.split(":")[0]) for f in failed] == [
        ((it / "leave.md").as_posix(), "another file is also named docs/leave.md")
    ]
