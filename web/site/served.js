// A classic script, so that it runs where the page's modules cannot: opened from disk (file://),
// Chromium and Firefox refuse module scripts and workers, and the page would say "loading the
// model…" forever. Say what to do instead.
if (location.protocol === "file:") {
  document.addEventListener("DOMContentLoaded", () => {
    const status = document.getElementById("status");
    status.textContent = "Error: this page must be served over http, not opened from disk: in its folder run "
      + "`python -m http.server --bind 127.0.0.1` and open http://127.0.0.1:8000/";
    status.className = "status error";
  });
}
