// Refreshes the status table every second from /status/data.json; without JavaScript the page reloads itself.
"use strict";

function cell(row, value) {
  const td = row.insertCell();
  td.textContent = value === null || value === undefined ? "–" : String(value);
  return td;
}

// Rates and latencies with one decimal (JSON reads 2.0 as 2), as the page is first rendered (app.py).
function figures(row, of) {
  for (const key of ["requests_per_second", "p50_ms", "p99_ms"]) cell(row, of[key] === null ? null : of[key].toFixed(1));
  cell(row, of.errors);
  cell(row, of.unsampled);
}

function render(data) {
  const rows = document.getElementById("rows");
  rows.replaceChildren();
  for (const service of data.services) {
    const line = rows.insertRow();
    line.className = "service";
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = service.name;
    line.appendChild(name);
    cell(line, `${service.replicas.length} replica(s)`);
    cell(line, "");
    figures(line, service);
    for (const replica of service.replicas) {
      const row = rows.insertRow();
      row.className = "replica";
      row.dataset.service = service.name;
      cell(row, "");
      const label = replica.name ? `${replica.name} (${replica.instance})` : replica.instance;
      cell(row, replica.node ? `${label} on ${replica.node}` : label);
      cell(row, `${replica.busy} busy / ${replica.idle} idle`);
      figures(row, replica);
    }
    for (const refused of service.refused) {
      const row = rows.insertRow();
      row.className = "refused";
      row.dataset.service = service.name;
      cell(row, "");
      cell(row, `refused: ${refused.name}`);
      cell(row, refused.why);
    }
  }
  const gateway = data.gateway;
  document.getElementById("gateway").textContent =
    `gateway: ${gateway.active_connections ?? "–"} connections open, ${gateway.requests_per_second} requests/s, ` +
    `p50 ${gateway.p50_ms ?? "–"} ms, p99 ${gateway.p99_ms ?? "–"} ms, ` +
    `${gateway.errors} errors in the last ${data.window_seconds} s`;
  const decisions = document.getElementById("autoscale");
  decisions.replaceChildren(
    ...data.autoscale.map((decision) => {
      const item = document.createElement("li");
      item.textContent = `${decision.at} ${decision.service}: ${decision.replicas} replica(s): ${decision.why}`;
      return item;
    }),
  );
  document.getElementById("updated").textContent = data.time;
}

async function refresh() {
  try {
    const response = await fetch("/status/data.json", { cache: "no-store" });
    if (response.ok) render(await response.json());
  } catch (error) {
    document.getElementById("updated").textContent = `not answering (${error})`;
  }
}

setInterval(refresh, 1000);
refresh();
