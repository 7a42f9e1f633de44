// tokenledger dashboard: the CSV downloads (RFC 4180: comma-separated,
// CRLF line ends, a header row, fields with a comma, quote or line break
// quoted, UTF-8). Values are written as the API gave them, unrounded,
// except that a name a client chose cannot become a spreadsheet formula.
"use strict";
(function () {
  function field(v) {
    const s = String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  // name is a model or user id as a spreadsheet must show it: one that
  // starts with =, +, -, @, a tab or a carriage return would be read as a
  // formula (=HYPERLINK(…) leaks data when clicked), so it gets a leading
  // ', which spreadsheets take as "this is text" (OWASP's advice).
  function name(s) {
    return /^[=+\-@\t\r]/.test(s) ? "'" + s : s;
  }

  // dollars is the API's nano-dollar amount as plain decimal text.
  function dollars(v) {
    return (v < 0 ? "-" : "") + Math.abs(v).toFixed(9).replace(/0+$/, "").replace(/\.$/, "");
  }

  function rows(kind, d) {
    if (kind === "daily") {
      return [["date", "prompt_tokens", "cache_read_tokens", "cache_write_tokens", "completion_tokens", "reasoning_tokens",
        "total_tokens", "requests", "unique_users", "unique_sessions", "cost_usd"]].concat(d.history.map(x => [
        x.date, x.promptTokens, x.cacheReadTokens, x.cacheWriteTokens, x.completionTokens, x.reasoningTokens,
        x.totalTokens, x.requestCount, x.uniqueUsers, x.uniqueSessions, dollars(x.costUsd)]));
    }
    if (kind === "models") {
      return [["model", "requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
        "priced_by_client", "priced_by_table", "unpriced"]].concat(d.models.slice().sort(TL.byCost).map(m => [
        name(m.model), m.requestCount, m.promptTokens, m.completionTokens, m.totalTokens, dollars(m.costUsd),
        m.pricing.client, m.pricing.table, m.pricing.unpriced]));
    }
    return [["user_id", "requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"]].concat(
      d.users.slice().sort(TL.byCost).map(u => [name(u.userId), u.requestCount, u.promptTokens, u.completionTokens, u.totalTokens, dollars(u.costUsd)]));
  }

  // csv downloads one table of the current range as
  // tokenledger-<kind>-<first day>-to-<last day>.csv.
  TL.csv = function (kind, d) {
    const body = rows(kind, d).map(r => r.map(field).join(",")).join("\r\n") + "\r\n";
    const h = d.history;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([body], { type: "text/csv;charset=utf-8" }));
    a.download = "tokenledger-" + kind + "-" + h[0].date + "-to-" + h[h.length - 1].date + ".csv";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  };
})();
