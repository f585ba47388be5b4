"""Links in the documentation: every relative link in README.md and docs/*.md leads to a file (and a
heading) in the repository, and every link to the course's public repository comes from course.toml."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from p2plab import labs, repository

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)


def _prose(markdown: str) -> str:
    """The markdown without fenced code blocks and inline code (a link shown as code is not a link)."""
    markdown = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.M | re.S)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", markdown, flags=re.S)


def links(page: Path) -> list[str]:
    text = _prose(page.read_text())
    return LINK.findall(text) + REFERENCE.findall(text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(page.read_text()), re.M)
    return {slug(h) for h in headings}


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)  # no scheme: http:, https:, mailto:


def test_the_pages_have_relative_links():
    assert sum(1 for page in PAGES for t in links(page) if relative(t)) >= 5


def test_link_finder_reads_markdown_as_markdown(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("# Title\n\nSee [the guide](docs/guide.md#set-up), ![a map](img/map.png \"Map\") and "
                    "`[not](a-link.md)`.\n\n```text\n[nor](this.md)\n```\n\n[ref]: other.md\n")
    assert links(page) == ["docs/guide.md#set-up", "img/map.png", "other.md"]
    assert slug("The course website") == "the-course-website" and slug("Lab 02 · The `Nat`") == "lab-02--the-nat"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if not relative(target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or ROOT not in dest.parents:
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if ROOT in dest.parents else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


# -------------------------------------------------------------- the repository, set once in course.toml
def test_readme_jupyterhub_guide_and_site_use_course_toml():
    repo = repository.settings(ROOT)
    assert repository.check(ROOT) == [], "run: python -m p2plab.labs links"
    assert repository.binder_badge(repo) in (ROOT / "README.md").read_text().splitlines()
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
    build_site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_site)
    assert f"[{repo.url}]({repo.url})" in build_site.index_markdown(ROOT)


def test_the_links_are_made_from_the_setting():
    repo = repository.Repository("https://github.com/example-school/nat-course", "fall-2026")
    assert repository.binder_url(repo) == ("https://mybinder.org/v2/gh/example-school/nat-course/fall-2026"
                                           "?labpath=course%2F00-start-here.ipynb")
    assert repository.nbgitpuller_link(repo, "https://hub.uni.example") == (
        "https://hub.uni.example/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fexample-school"
        "%2Fnat-course&branch=fall-2026&urlpath=lab%2Ftree%2Fnat-course%2Fcourse%2F00-start-here.ipynb%3Fautodecode")
    assert repository.pip_requirement(repo) == "p2plab @ git+https://github.com/example-school/nat-course@fall-2026"


def _copy(tmp_path: Path) -> Path:
    for name in ("course.toml", "README.md", repository.JUPYTERHUB):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_a_fork_changes_one_file_and_runs_links(tmp_path, capsys):
    root = _copy(tmp_path)
    old = repository.settings(root)
    toml = (root / "course.toml").read_text()
    (root / "course.toml").write_text(toml.replace(old.url, "https://github.com/example-school/nat-course")
                                      .replace(f'branch = "{old.branch}"', 'branch = "fall-2026"'))
    assert labs.main(["links", "--check", "--root", str(root)]) == 1
    assert "Binder badge" in capsys.readouterr().err
    assert labs.main(["links", "--root", str(root)]) == 0
    assert labs.main(["links", "--check", "--root", str(root)]) == 0
    hub = (root / repository.JUPYTERHUB).read_text()
    assert old.url not in hub and f"lab/tree/{old.name}/" not in hub and f"%2F{old.name}%2F" not in hub
    assert f"@{old.branch}" not in hub and f"branch={old.branch}" not in hub
    assert "lab/tree/nat-course/course/00-start-here.ipynb" in hub
    assert "example-school/nat-course/fall-2026" in (root / "README.md").read_text()
    assert labs.main(["links", "--root", str(root)]) == 0
    assert "already in agreement" in capsys.readouterr().out


@pytest.mark.parametrize("url, branch, error", [
    ("https://github.com/a/b.git/", "main", "url must look like"),
    ("github.com/a/b", "main", "url must look like"),
    ("https://github.com/a/b", "", "branch must be"),
])
def test_bad_settings_are_explained(tmp_path, url, branch, error):
    (tmp_path / "course.toml").write_text(f'[repository]\nurl = "{url}"\nbranch = "{branch}"\n')
    with pytest.raises(ValueError, match=error):
        repository.settings(tmp_path)
    with pytest.raises(FileNotFoundError, match="course.toml is missing"):
        repository.settings(tmp_path / "nowhere")
