// Progress bars of background jobs: poll /api/jobs/<id> until the job is done or failed.
// A static file, not an inline script: the Content-Security-Policy allows scripts from 'self' only.
(() => {
  if (window.jobProgressStarted) return;
  window.jobProgressStarted = true;
  const INTERVAL_MS = 1500;

  function show(box, job) {
    const bar = box.querySelector("progress");
    bar.value = job.percent;
    bar.textContent = job.percent + "%";
    box.querySelector(".job-status").textContent = job.status_label;
    box.querySelector(".job-count").textContent = job.total === null ? "" : job.done + " / " + job.total;
    box.querySelector(".job-message").textContent = job.message || "";
    box.querySelector(".job-error").textContent = job.error || "";
    const link = box.querySelector(".job-result");
    if (job.result_url && job.status === "done") {
      link.href = job.result_url;
      link.hidden = false;
    }
    box.dataset.finished = job.finished ? "yes" : "no";
  }

  async function poll(box) {
    try {
      const response = await fetch(box.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return; // gone or no longer visible: leave the bar as it is
      const job = await response.json();
      show(box, job);
      if (!job.finished) setTimeout(() => poll(box), INTERVAL_MS);
    } catch (_error) {
      setTimeout(() => poll(box), INTERVAL_MS * 4); // the network or the server is away: try again later
    }
  }

  function start() {
    document.querySelectorAll(".job-progress[data-job-url]").forEach((box) => {
      if (box.dataset.finished !== "yes") poll(box);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
