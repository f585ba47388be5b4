"""The course's public repository, set once in ``course.toml``, and the links made from it.

``course.toml`` holds the repository URL and branch. The README's Binder badge, the pip and nbgitpuller
examples in ``docs/jupyterhub.md`` and the website's home page are made from it:

* ``python -m p2plab.labs links`` rewrites the README badge and ``docs/jupyterhub.md`` after a fork
  changed ``course.toml``;
* ``python -m p2plab.labs links --check`` lists every place that disagrees (``tests/test_links.py``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SETTINGS = "course.toml"
README = "README.md"
JUPYTERHUB = "docs/jupyterhub.md"
FIRST_NOTEBOOK = "course/00-start-here.ipynb"
EXAMPLE_HUB = "https://hub.example.edu"
_URL = re.compile(r"^https://github\.com/([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+)$")
_SENTENCE = re.compile(r"The examples use the repository `([^`]+)` and the\s+branch `([^`]+)`")


@dataclass(frozen=True)
class Repository:
    """The course's public repository: ``url`` (``https://github.com/OWNER/NAME``) and ``branch``."""

    url: str
    branch: str

    @property
    def owner(self) -> str:
        return _URL.match(self.url).group(1)  # type: ignore[union-attr]

    @property
    def name(self) -> str:
        """The repository's name, which is also the folder nbgitpuller clones it into."""
        return _URL.match(self.url).group(2)  # type: ignore[union-attr]


def settings(root: Path | str = ".") -> Repository:
    """The repository set in ``root/course.toml``; a clear error when it is missing or malformed."""
    path = Path(root) / SETTINGS
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: it sets the course's repository ([repository] url, branch)") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML ({exc}); see the comments in the repository's course.toml") \
            from None
    repo = data.get("repository", {})
    url, branch = repo.get("url"), repo.get("branch")
    if not isinstance(url, str) or not _URL.match(url):
        raise ValueError(f"{path}: [repository] url must look like https://github.com/OWNER/NAME (no .git, "
                         f"no trailing slash), not {url!r}")
    if not isinstance(branch, str) or not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise ValueError(f"{path}: [repository] branch must be a branch name such as main, not {branch!r}")
    return Repository(url, branch)


def binder_url(repo: Repository, path: str = FIRST_NOTEBOOK) -> str:
    """mybinder.org's link that builds ``repo`` at its branch and opens ``path`` in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{repo.owner}/{repo.name}/{repo.branch}?labpath={quote(path, safe='')}"


def binder_badge(repo: Repository) -> str:
    """The README's Binder badge line (markdown)."""
    return f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(repo)})"


def nbgitpuller_urlpath(repo: Repository, path: str = FIRST_NOTEBOOK) -> str:
    """nbgitpuller's ``urlpath``: the notebook in the clone (the clone's folder is the repository's name)."""
    return f"lab/tree/{repo.name}/{path}%3Fautodecode"


def nbgitpuller_link(repo: Repository, hub: str = EXAMPLE_HUB, path: str = FIRST_NOTEBOOK) -> str:
    """The one-click link that clones ``repo`` for a student on ``hub`` and opens ``path``."""
    urlpath = quote(nbgitpuller_urlpath(repo, path), safe="%")
    return (f"{hub}/hub/user-redirect/git-pull?repo={quote(repo.url, safe='')}&branch={quote(repo.branch, safe='')}"
            f"&urlpath={urlpath}")


def pip_requirement(repo: Repository) -> str:
    """``p2plab @ git+URL@BRANCH``: the course's package from the repository."""
    return f"p2plab @ git+{repo.url}@{repo.branch}"


def check(root: Path | str = ".") -> list[str]:
    """Every place that disagrees with ``course.toml`` (empty when all agree)."""
    root = Path(root)
    repo = settings(root)
    problems = []
    readme = (root / README).read_text()
    badges = [line for line in readme.splitlines() if line.startswith("[![Binder]")]
    if badges != [binder_badge(repo)]:
        problems.append(f"{README}: the Binder badge should be {binder_badge(repo)!r}, not {badges!r}")
    hub = (root / JUPYTERHUB).read_text()
    m = _SENTENCE.search(hub)
    if not m or (m.group(1), m.group(2)) != (repo.url, repo.branch):
        problems.append(f"{JUPYTERHUB}: the sentence 'The examples use the repository `{repo.url}` and the branch "
                        f"`{repo.branch}`' is missing or different")
    for url in re.findall(r"https://github\.com/[^\s`\"'@)]+", hub):
        if url != repo.url:
            problems.append(f"{JUPYTERHUB}: {url} is not the course's repository {repo.url}")
    for ref in re.findall(r"git\+\S*?@([A-Za-z0-9._/-]+)", hub):
        if ref != repo.branch:
            problems.append(f"{JUPYTERHUB}: a pip example installs @{ref}, not the branch {repo.branch}")
    for want in (pip_requirement(repo), nbgitpuller_link(repo), f"`{nbgitpuller_urlpath(repo)}`",
                 f"| `repo` | `{repo.url}` |", f"| `branch` | `{repo.branch}` |"):
        if want not in hub:
            problems.append(f"{JUPYTERHUB}: {want!r} is missing")
    return problems


def rewrite(root: Path | str = ".") -> list[str]:
    """Make the README badge and ``docs/jupyterhub.md`` agree with ``course.toml``; returns the files changed."""
    root = Path(root)
    repo = settings(root)
    changed = []
    readme_path = root / README
    readme = readme_path.read_text()
    new = re.sub(r"^\[!\[Binder\]\(.*$", lambda _: binder_badge(repo), readme, flags=re.M)
    if new != readme:
        readme_path.write_text(new)
        changed.append(README)
    hub_path = root / JUPYTERHUB
    hub = hub_path.read_text()
    m = _SENTENCE.search(hub)
    if not m or not _URL.match(m.group(1)):
        raise ValueError(f"{JUPYTERHUB}: cannot find 'The examples use the repository `https://github.com/OWNER/NAME` "
                         "and the branch `BRANCH`', which says what to replace; put it back, then run this again")
    old = Repository(m.group(1), m.group(2))
    new = hub
    pairs = [
        (nbgitpuller_link(old), nbgitpuller_link(repo)),
        (nbgitpuller_urlpath(old), nbgitpuller_urlpath(repo)),
        (f"{old.url}@{old.branch}", f"{repo.url}@{repo.branch}"),
        (f"https://...@{old.branch}", f"https://...@{repo.branch}"),
        (f"| `branch` | `{old.branch}` |", f"| `branch` | `{repo.branch}` |"),
        (m.group(0), m.group(0).replace(f"`{old.url}`", f"`{repo.url}`").replace(f"`{old.branch}`", f"`{repo.branch}`")),
        (old.url, repo.url),
    ]
    for a, b in pairs:
        new = new.replace(a, b)
    if new != hub:
        hub_path.write_text(new)
        changed.append(JUPYTERHUB)
    return changed


__all__ = ["Repository", "settings", "binder_url", "binder_badge", "nbgitpuller_link", "nbgitpuller_urlpath",
           "pip_requirement", "check", "rewrite"]
