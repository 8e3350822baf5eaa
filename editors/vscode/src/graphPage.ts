// The run graph page's markup, without VS Code: graphPanel.ts wraps it in the webview's page
// (Content Security Policy, stylesheet and script by webview URI), and the replay test
// (test/e2e/graphReplay.test.ts) in a plain page of its own.

/** The body of the page, before its script: the header and legend, the graph, the timeline, the node menu. */
export const GRAPH_PAGE_BODY = `<header><h1 id="title">Gadugi</h1>
<ul class="legend" aria-label="Legend">
<li class="s-queued">queued</li><li class="s-running">running</li><li class="s-succeeded">succeeded</li><li class="s-failed">failed</li><li class="s-skipped">skipped / cancelled</li>
<li class="critical">critical path</li><li class="predicted">predicted conflict</li><li class="declared">same files</li>
</ul></header>
<p id="empty" hidden>No tasks.</p>
<section id="graph-section" aria-label="Dependency graph"><svg id="graph" role="group" aria-label="Tasks by dependency, left to right"></svg></section>
<section id="timeline-section" aria-label="Timeline of attempts"><h2>Timeline of attempts</h2><svg id="timeline"></svg></section>
<div id="menu" role="menu" hidden></div>`;
