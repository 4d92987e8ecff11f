// The printable report's "打印" button (no inline handlers: the CSP forbids them).
document.getElementById("print-report")?.addEventListener("click", () => window.print());
