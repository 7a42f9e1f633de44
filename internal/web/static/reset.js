// tokenledger dashboard: the Reset dialog. Shown only when the server has
// an admin key; it asks for that key and for "reset" typed out, then sends
// DELETE /api/tokens with the key. The admin key is never stored.
"use strict";
(function () {
  const $ = id => document.getElementById(id);

  TL.wireReset = function (reload) {
    const dlg = $("resetdialog"), key = $("adminkey"), confirm = $("confirm"), go = $("resetgo"), err = $("reseterror");
    const ready = () => { go.disabled = !(key.value && confirm.value.trim().toLowerCase() === "reset"); };
    const close = () => { key.value = ""; confirm.value = ""; err.hidden = true; ready(); dlg.close(); };
    key.addEventListener("input", ready);
    confirm.addEventListener("input", ready);
    $("resetcancel").addEventListener("click", close);
    $("reset").addEventListener("click", () => { ready(); dlg.showModal(); key.focus(); });
    $("resetform").addEventListener("submit", async ev => {
      ev.preventDefault();
      if (go.disabled) return;
      go.disabled = true;
      try {
        const res = await fetch("/api/tokens", { method: "DELETE", headers: { Authorization: "Bearer " + key.value }, cache: "no-store" });
        let body = null;
        try { body = await res.json(); } catch (e) { body = null; }
        if (res.status !== 200) {
          err.hidden = false;
          err.textContent = (body && body.error) || "Reset failed with HTTP " + res.status + ".";
          ready();
          return;
        }
        close();
        reload();
      } catch (e) {
        err.hidden = false;
        err.textContent = "Cannot reach the server: " + e.message;
        ready();
      }
    });
  };
})();
