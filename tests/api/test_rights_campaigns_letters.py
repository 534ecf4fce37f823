"""Who may do what with campaigns, visits, risk letters, the evaluation and the quiet grids: a
rights matrix (each role × each route of issue 15, the status or what is seen), on the small
place of the campaign tests with one launched campaign, one issued letter and four visits with
a photo each (the worker's and an admin's elsewhere, each plain and to a household)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from geo.settings import PhotoSettings, Settings
from tests.api.test_photos import photo, picture
from tests.geo.campaigns.place import A1, B1, D_A, D_C, as_, at, campaign_body, prepared

WATER, GAS = "水务局", "燃气公司"  # the letter goes to 水务局; 燃气公司 is another department
CODE = "CA11"  # the launched campaign every read is about

# Who acts, and their scope. `dsp` is bound to district C, outside the campaign (districts
# A and B) and the letter (district A): someone else's object.
ACTORS: dict[str, dict] = {
    "wrk": {"role": "worker", "grids": (A1,)},
    "city": {"role": "dispatcher"},
    "dsp": {"role": "dispatcher", "districts": (D_C,)},
    "dept": {"role": "department", "department": WATER},
    "odept": {"role": "department", "department": GAS},
    "crd": {"role": "coordinator", "districts": (D_A,)},
    "pln": {"role": "planner"},
    "adm": {"role": "admin"},
    "anon": {},
}

# The visits read: the worker's in A1 and an admin's in B1 (outside the worker's grids and the
# coordinator's district), each plain and to a household target (HH000 in A1, HH006 in B1).
VISITS = {"own": ("wrk", A1, None), "oth": ("adm", B1, None)}
VISITS |= {"hh": ("wrk", A1, "HH000"), "hh-oth": ("adm", B1, "HH006")}

# The place's households alone and over 60 that each role sees: 3 in A1, 1 in A2, 2 in B1.
SEEN_HOUSEHOLDS = {"worker": 3, "coordinator": 4, "admin": 6}

# A status, or: seen / hid (the object in a list or not), hh / cnt (household targets listed,
# those of the actor's scope alone, or their counts alone with `targets: null`).
MATRIX = """
route          wrk  city dsp  dept odept crd  pln  adm  anon
campaigns      seen seen seen seen seen  seen seen seen 401
campaign       200  200  200  200  200   200  200  200  401
coverage       200  200  200  200  200   200  200  200  401
progress       200  200  200  200  200   200  200  200  401
targets        hh   cnt  cnt  cnt  cnt   hh   cnt  hh   401
create         403  201  403  403  403   403  403  201  401
launch         403  200  403  403  403   403  403  200  401
visit          201  403  403  403  403   403  403  201  401
letters        403  seen hid  seen hid   403  seen seen 401
letter         403  200  404  200  404   403  200  200  401
draft          403  201  403  403  403   403  403  201  401
acknowledge    403  403  404  200  404   403  403  200  401
evaluation     403  200  200  200  200   403  200  200  401
quiet          200  200  200  200  200   200  200  200  401
page-campaigns 200  200  200  200  200   200  200  200  303
page-campaign  200  200  200  200  200   200  200  200  303
page-eval      200  200  200  200  200   403  200  200  303
visit-own      200  200  404  200  404   200  200  200  401
visit-oth      404  200  404  200  404   404  200  200  401
visit-hh       200  403  404  403  404   200  403  200  401
visit-hh-oth   404  403  404  403  404   404  403  200  401
add-photo      201  403  404  403  404   403  403  201  401
add-photo-oth  404  403  404  403  404   404  403  201  401
photo-own      200  200  404  200  404   200  200  200  401
photo-oth      404  200  404  200  404   404  200  200  401
photo-hh       200  403  404  403  404   200  403  200  401
photo-hh-oth   404  403  404  403  404   404  403  200  401
thumb-own      200  200  404  200  404   200  200  200  401
thumb-oth      404  200  404  200  404   404  200  200  401
thumb-hh       200  403  404  403  404   200  403  200  401
thumb-hh-oth   404  403  404  403  404   404  403  200  401
page-visit     200  403  403  403  403   403  403  200  303
"""

# Known departures from the documented rule (role, route): the reason, for an xfail.
KNOWN: dict[tuple[str, str], str] = {}


def _cases() -> list:
    lines = [ln.split() for ln in MATRIX.strip().splitlines()]
    roles = lines[0][1:]
    cases = []
    for route, *cells in lines[1:]:
        for role, cell in zip(roles, cells, strict=True):
            marks = ()
            if (role, route) in KNOWN:
                marks = pytest.mark.xfail(strict=True, reason=KNOWN[role, route])
            cases.append(pytest.param(role, route, cell, id=f"{role}-{route}", marks=marks))
    return cases


class Scene:
    """The place, a client, each actor's headers, the launched campaign and the issued letter."""

    def __init__(self, engine: Engine, api: TestClient) -> None:
        self.engine, self.api = engine, api
        self.headers = {
            name: as_(engine, a["role"], **{k: v for k, v in a.items() if k != "role"}) if a else {}
            for name, a in ACTORS.items()
        }
        self.admin = self.headers["adm"]
        self.scope = {h["Authorization"]: ACTORS[n] for n, h in self.headers.items() if h}
        self._codes = itertools.count(1)
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        self.dates = {
            "starts_on": str(today - timedelta(days=1)),
            "ends_on": str(today + timedelta(days=30)),
        }
        targets = {"register": "households", "filter": {"living_alone_over": 60}}
        self.campaign(CODE, targets=targets)
        self.ok(api.post(f"/api/v1/campaigns/{CODE}/launch", headers=self.admin))
        self.letter = self.issued_letter()
        self._seeds = itertools.count(1)
        self.visits = {name: self.visit(*made) for name, made in VISITS.items()}

    @staticmethod
    def ok(r):
        """Return the JSON of a set-up request, which must succeed."""
        assert r.status_code < 300, r.text
        return r.json()

    def code(self) -> str:
        return f"N{next(self._codes)}"

    def body(self, code: str, **over) -> dict:
        return campaign_body(code=code, **self.dates, **over)

    def campaign(self, code: str, **over) -> dict:
        """Create a draft campaign as the admin."""
        return self.ok(
            self.api.post("/api/v1/campaigns", json=self.body(code, **over), headers=self.admin)
        )

    def visit(self, actor: str, grid: str, target: str | None) -> tuple[str, str]:
        """Record a visit to CA11 at `grid` as `actor`, with a photo; return (visit, photo)."""
        lon, lat = at(grid)
        body = {"id": str(uuid.uuid4()), "campaign": CODE, "lon": lon, "lat": lat}
        body |= {"answers": {"low_lying": False}, "target": target}
        h = self.headers[actor]
        vid = self.ok(self.api.post("/api/v1/visits", json=body, headers=h))["id"]
        return vid, self.ok(self.add_photo(vid, h))["id"]

    def add_photo(self, vid: str, h: dict):
        """Send a new picture (another each time, so none is a replay) to visit `vid`."""
        data = photo(img=picture(next(self._seeds), (160, 120)), at=None, taken=None)
        files = {"file": ("p.jpg", data, "image/jpeg")}
        return self.api.post(f"/api/v1/visits/{vid}/photos", files=files, headers=h)

    def issued_letter(self) -> str:
        """Draft and issue a letter to 水务局 over district A, as the admin; return its id."""
        draft = self.ok(
            self.api.post(
                "/api/v1/letters",
                json={"department": WATER, "districts": [D_A]},
                headers=self.admin,
            )
        )
        self.ok(self.api.post(f"/api/v1/letters/{draft['id']}/issue", headers=self.admin))
        return draft["id"]


@pytest.fixture(scope="module")
def scene(test_database: tuple[Settings, Engine], tmp_path_factory) -> Iterator[Scene]:
    """The scene, built once: the cases' writes each make their own objects (new codes, ids,
    letters), so no case sees another's."""
    settings, engine = test_database
    place = prepared(engine, tmp_path_factory.mktemp("rights-campaigns"))
    folder = tmp_path_factory.mktemp("rights-campaigns-photos")
    settings = settings.model_copy(update={"photos": PhotoSettings(folder=folder)})
    with TestClient(create_app(settings, engine=place)) as api:
        yield Scene(place, api)


def _seen(r, found: Callable[[object], bool]) -> str | int:
    if r.status_code != 200:
        return r.status_code
    return "seen" if found(r.json()) else "hid"


def _campaigns(s: Scene, h: dict) -> str | int:
    r = s.api.get("/api/v1/campaigns", headers=h)
    return _seen(r, lambda body: CODE in {c["code"] for c in body})


def _targets(s: Scene, h: dict) -> str | int:
    r = s.api.get(f"/api/v1/campaigns/{CODE}/targets", headers=h)
    if r.status_code != 200:
        return r.status_code
    shown = r.json()["targets"]
    if shown is None:
        return "cnt"
    # Households only of the actor's grids or districts (an admin's: all six).
    scope = s.scope[h["Authorization"]]
    grids = {t["grid_code"] for t in shown}
    districts = {t["district_code"] for t in shown}
    inside = grids <= set(scope.get("grids", grids)) and districts <= set(
        scope.get("districts", districts)
    )
    return "hh" if inside and len(shown) == SEEN_HOUSEHOLDS[scope["role"]] else f"hh {shown}"


def _launch(s: Scene, h: dict) -> int:
    code = s.code()
    s.campaign(code)
    return s.api.post(f"/api/v1/campaigns/{code}/launch", headers=h).status_code


def _visit(s: Scene, h: dict) -> int:
    lon, lat = at(A1)
    body = {"id": str(uuid.uuid4()), "campaign": CODE, "lon": lon, "lat": lat}
    body["answers"] = {"low_lying": True}
    return s.api.post("/api/v1/visits", json=body, headers=h).status_code


def _letters(s: Scene, h: dict) -> str | int:
    r = s.api.get("/api/v1/letters", headers=h)
    return _seen(r, lambda body: s.letter in {x["id"] for x in body["letters"]})


def _draft(s: Scene, h: dict) -> int:
    body = {"department": WATER, "districts": [D_A]}
    return s.api.post("/api/v1/letters", json=body, headers=h).status_code


def _acknowledge(s: Scene, h: dict) -> int:
    letter = s.issued_letter()  # a fresh one: the move is made once
    return s.api.post(f"/api/v1/letters/{letter}/acknowledge", headers=h).status_code


def _get(path: str) -> Callable[[Scene, dict], int]:
    return lambda s, h: s.api.get(path, headers=h, follow_redirects=False).status_code


def _visit_get(name: str, tail: str = "") -> Callable[[Scene, dict], int]:
    def get(s: Scene, h: dict) -> int:
        vid, pid = s.visits[name]
        path = f"/api/v1/visits/{vid}" + tail.format(pid=pid)
        return s.api.get(path, headers=h).status_code

    return get


ROUTES: dict[str, Callable[[Scene, dict], object]] = {
    "campaigns": _campaigns,
    "campaign": _get(f"/api/v1/campaigns/{CODE}"),
    "coverage": _get(f"/api/v1/campaigns/{CODE}/coverage"),
    "progress": _get(f"/api/v1/campaigns/{CODE}/progress"),
    "targets": _targets,
    "create": lambda s, h: (
        s.api.post("/api/v1/campaigns", json=s.body(s.code()), headers=h).status_code
    ),
    "launch": _launch,
    "visit": _visit,
    "letters": _letters,
    "letter": lambda s, h: _get(f"/api/v1/letters/{s.letter}")(s, h),
    "draft": _draft,
    "acknowledge": _acknowledge,
    "evaluation": _get("/api/v1/evaluation?by=department"),
    "quiet": _get("/api/v1/hotspots/quiet"),
    "page-campaigns": _get("/campaigns"),
    "page-campaign": _get(f"/campaigns/{CODE}"),
    "page-eval": _get("/evaluation"),
    **{f"visit-{n}": _visit_get(n) for n in VISITS},
    "add-photo": lambda s, h: s.add_photo(s.visits["own"][0], h).status_code,
    "add-photo-oth": lambda s, h: s.add_photo(s.visits["oth"][0], h).status_code,
    **{f"photo-{n}": _visit_get(n, "/photos/{pid}") for n in VISITS},
    **{f"thumb-{n}": _visit_get(n, "/photos/{pid}/thumb") for n in VISITS},
    "page-visit": _get("/report/visit"),
}


@pytest.mark.parametrize(("role", "route", "expected"), _cases())
def test_rights_matrix(scene: Scene, role: str, route: str, expected: str) -> None:
    assert str(ROUTES[route](scene, scene.headers[role])) == expected


def test_anonymous_pages_send_to_the_login(scene: Scene) -> None:
    for path in ("/campaigns", f"/campaigns/{CODE}", "/evaluation", "/report/visit"):
        r = scene.api.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
