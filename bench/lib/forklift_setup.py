"""Prepares a running Forklift web app for the HTTP scenarios, through its pages as a
browser would: signs up bench@localhost (GET /signup for the CSRF cookie, POST the
form), creates an API token (POST /tokens), then submits N debug.noop jobs over the
JSON API and waits until they have all succeeded.

Usage: forklift_setup.py <base url> [jobs]     Prints {"token", "session"} as JSON.
"""

import http.cookiejar
import json
import re
import sys
import time
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main():
    base = sys.argv[1].rstrip("/")
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

    def request(method, path, data=None, headers=None):
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def cookie(name):
        return next((c.value for c in jar if c.name == name), None)

    status, page = request("GET", "/signup")
    assert status == 200, f"GET /signup answered {status}"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "email": "bench@localhost", "password": "bench-password-123"})
    status, _ = request("POST", "/signup", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    session = cookie("forklift_session")
    assert status in (302, 303) and session, f"sign-up failed: {status}"
    csrf = cookie("forklift_csrf") or csrf
    form = urllib.parse.urlencode({"csrf": csrf, "name": "bench"})
    status, page = request("POST", "/tokens", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    m = re.search(r"fk_[0-9a-f]{64}", page)
    assert m, f"no token on the page after POST /tokens ({status})"
    token = m.group(0)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"kind": "debug.noop", "params": {}, "input_file_ids": []}).encode()
    for _ in range(jobs):
        status, out = request("POST", "/api/v1/jobs", body, auth)
        assert status == 201, f"POST /api/v1/jobs answered {status}: {out}"
    deadline = time.time() + 60
    while time.time() < deadline:
        status, out = request("GET", f"/api/v1/jobs?limit={jobs}&state=succeeded", None, auth)
        if status == 200 and len(json.loads(out)["items"]) >= jobs:
            break
        time.sleep(0.2)
    else:
        sys.exit("the seed jobs did not all succeed within 60 s")
    print(json.dumps({"token": token, "session": session}))


if __name__ == "__main__":
    main()
