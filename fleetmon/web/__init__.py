"""The web dashboard: HTML pages and their static assets, served by the FastAPI app.

Pages are thin HTML shells; their script (static/app.js) fetches the same JSON API as any client, with
the session cookie set by the login form, so every number on a page is the API's number. The one
endpoint added for the pages, `/api/v1/fleet/racks`, aggregates server-side so the overview never
ships one row per device to the browser.
"""
