// An import's page: static/jobs/progress.js moves its bar; once the job has finished, reload the page,
// which then shows the import's summary (or its row errors). A static file: the CSP allows 'self' only.
(() => {
  const box = document.querySelector("#import-job .job-progress");
  if (!box || box.dataset.finished === "yes") return;
  new MutationObserver(() => {
    if (box.dataset.finished === "yes") window.location.reload();
  }).observe(box, { attributes: true, attributeFilter: ["data-finished"] });
})();
