// Vidmorph playground: a plain page over the server's own useapi.net-style Runway v1 API.
// Paste a token (kept in localStorage), upload a video, submit a gen3 / gen3turbo task, follow
// it live over /tasks/{id}/events (read with fetch, since EventSource cannot send a header;
// polling is the fallback), watch input and output side by side, and manage past tasks.
'use strict';

const API = '/v1/runwayml';
const TOKEN_KEY = 'vidmorph.token';
const ACCOUNT_KEY = 'vidmorph.account';
const IN_FLIGHT = new Set(['PENDING', 'THROTTLED', 'RUNNING']);
const MODELS = {
  gen3a: 'Gen-3 Alpha',
  gen3a_turbo: 'Gen-3 Alpha Turbo',
  gen4_aleph: 'Gen-4 Aleph',
  aleph2: 'Aleph 2',
};

const $ = (id) => document.getElementById(id);
// `email` is the account chosen when the token has several (the API then needs it named)
const state = { token: '', email: '', asset: null, taskId: null, watch: null };

// ---- API calls -------------------------------------------------------------------------------

/** The API's own `error` text from a failed response (or a plain status line). */
async function errorOf(resp) {
  try {
    const body = await resp.json();
    if (body && body.error) return String(body.error);
  } catch (_) { /* not JSON */ }
  return `${resp.status} ${resp.statusText || 'request failed'}`;
}

/** fetch() with the token; resolves to the parsed JSON (null for 204), throws the API error. */
async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  const resp = await fetch(API + path, { ...options, headers });
  if (!resp.ok) throw new Error(await errorOf(resp));
  return resp.status === 204 ? null : resp.json();
}

/** The chosen account as a query parameter after `sep` ('?' or '&'); '' when there is one. */
function account(sep) {
  return state.email ? `${sep}email=${encodeURIComponent(state.email)}` : '';
}

/** POST the raw file to /assets/ with XHR, for upload progress. */
function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/assets/?name=${encodeURIComponent(file.name)}${account('&')}`);
    xhr.setRequestHeader('Authorization', `Bearer ${state.token}`);
    xhr.setRequestHeader('Content-Type', file.type || 'video/mp4');
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new Error('Upload failed: the server could not be reached.'));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new Error((body && body.error) || `${xhr.status} upload failed`));
    };
    xhr.send(file);
  });
}

// ---- small view helpers ----------------------------------------------------------------------

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
}

function clearError() {
  $('error').textContent = '';
  $('error').hidden = true;
}

/** Run a user action; its failure goes to the error area, its success clears it. */
async function act(fn) {
  try {
    await fn();
    clearError();
  } catch (err) {
    showError(err.message || String(err));
  }
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  for (n = Number(n) || 0; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function formatTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

/** Point a <video> at `url` (or at nothing); a no-op when it already shows that URL. */
function setVideo(id, url) {
  const video = $(id);
  if ((video.getAttribute('src') || null) === (url || null)) return;
  if (url) video.src = url;
  else video.removeAttribute('src');
  video.load();
}

// ---- token, features -------------------------------------------------------------------------

async function connect() {
  state.token = $('token').value.trim();
  if (!state.token) throw new Error('Paste your API token first.');
  localStorage.setItem(TOKEN_KEY, state.token);
  await loadAccounts();
  await loadFeatures();
  await loadTasks();
}

/** With several accounts, show a choice of them (the last one chosen, else the first). */
async function loadAccounts() {
  const emails = Object.keys(await api('/accounts')).sort();
  const several = emails.length > 1;
  const kept = localStorage.getItem(ACCOUNT_KEY);
  state.email = several ? (emails.includes(kept) ? kept : emails[0]) : '';
  const select = $('account');
  select.replaceChildren(...emails.map((e) => el('option', { value: e, textContent: e })));
  select.value = state.email;
  select.hidden = !several;
  $('account-label').hidden = !several;
}

async function switchAccount(email) {
  state.email = email;
  localStorage.setItem(ACCOUNT_KEY, email);
  await loadFeatures();
  await loadTasks();
}

async function loadFeatures() {
  const f = await api(`/features/${account('?')}`);
  const used = (f.used && f.used.numPlanCredits) || 0;
  const permitted = (f.permitted && f.permitted.numPlanCredits) || 0;
  $('credits').textContent =
    `${used.toLocaleString()} / ${permitted.toLocaleString()} credits · ${f.plan} · ${f.engine}`;
  $('credits').classList.remove('muted');
  if (f.maxSeconds) $('seconds').max = f.maxSeconds;
  $('exploreMode').disabled = !f.exploreMode;
}

// ---- upload ----------------------------------------------------------------------------------

async function upload(file) {
  state.asset = null;
  $('submit').disabled = true;
  $('probe').hidden = true;
  setVideo('input', null);
  $('drop').classList.add('busy');
  $('drop-text').textContent = `Uploading ${file.name}…`;
  try {
    state.asset = await uploadFile(file, (r) => {
      $('drop-text').textContent = `Uploading ${file.name}… ${Math.round(r * 100)}%`;
    });
  } finally {
    $('drop').classList.remove('busy');
    $('drop-text').textContent = state.asset
      ? `${file.name} · drop or choose another` : 'Drop a video here or choose a file';
  }
  showProbe(state.asset);
  setVideo('input', state.asset.url);
  setVideo('output', null);
  $('submit').disabled = false;
}

function showProbe(asset) {
  const m = asset.metadata || {};
  const facts = [
    ['Duration', m.duration != null ? `${Number(m.duration).toFixed(2)} s` : '?'],
    ['Size', `${m.width}×${m.height}`],
    ['Frame rate', m.frameRate != null ? `${+Number(m.frameRate).toFixed(2)} fps` : '?'],
    ['Audio', m.hasAudio ? 'yes' : 'no'],
    ['File', formatBytes(asset.fileSize)],
  ];
  $('probe').replaceChildren(...facts.map(([k, v]) => el('div', {}, el('dt', { textContent: k }),
    el('dd', { textContent: v }))));
  $('probe').hidden = false;
}

// ---- create a task ---------------------------------------------------------------------------

function requestBody() {
  const form = $('gen-form');
  const body = {
    assetId: state.asset.assetId,
    text_prompt: form.text_prompt.value,
    structure_transformation: Number(form.structure_transformation.value),
    exploreMode: form.exploreMode.checked,
  };
  for (const name of ['seconds', 'seed']) {
    if (form[name].value !== '') body[name] = Number(form[name].value);
  }
  if (form.model.value === 'gen3turbo') body.aspect_ratio = form.aspect_ratio.value;
  return body;
}

async function submit() {
  if (!state.asset) throw new Error('Upload a video first.');
  const route = $('model').value === 'gen3turbo' ? 'gen3turbo' : 'gen3';
  const task = await api(`/${route}/video`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(requestBody()),
  });
  openTask(task);
  loadTasks().catch(() => {});
  loadFeatures().catch(() => {});
}

// ---- follow a task ---------------------------------------------------------------------------

/** Show `task` in the viewer and follow it while it is in flight. */
function openTask(task) {
  if (state.watch) state.watch.abort();
  state.watch = null;
  state.taskId = task.taskId;
  setVideo('input', (task.options && task.options.video_prompt) || (state.asset && state.asset.url));
  setVideo('output', null);
  renderTask(task);
  if (IN_FLIGHT.has(task.status)) watch(task.taskId);
}

function renderTask(task) {
  if (task.taskId !== state.taskId) return;
  const status = task.status;
  const flying = IN_FLIGHT.has(status);
  $('status').textContent = status;
  $('status').dataset.status = status;
  const ratio = task.progressRatio == null ? null : Number(task.progressRatio);
  const progress = $('progress');
  if (status === 'SUCCEEDED') progress.value = 1;
  else if (ratio != null && !isNaN(ratio)) progress.value = ratio;
  else if (status === 'PENDING') progress.removeAttribute('value');
  else progress.value = 0;
  $('detail').textContent = detailOf(task, ratio);
  $('cancel').hidden = !flying;
  $('task-prompt').textContent = (task.options && task.options.text_prompt) || '';
  const artifact = status === 'SUCCEEDED' && task.artifacts && task.artifacts[0];
  $('download').hidden = !artifact;
  if (artifact) {
    $('download').href = artifact.url;
    $('download').download = artifact.filename || 'vidmorph.mp4';
    setVideo('output', artifact.url);
  }
}

function detailOf(task, ratio) {
  switch (task.status) {
    case 'PENDING': {
      const parts = ['Waiting'];
      if (task.placeInLine != null) parts.push(`place in line ${task.placeInLine}`);
      if (task.estimatedTimeToStartSeconds != null) {
        parts.push(`starts in ~${Math.round(task.estimatedTimeToStartSeconds)} s`);
      }
      return parts.join(' · ');
    }
    case 'RUNNING':
      return task.progressText || (ratio != null ? `${Math.round(ratio * 100)}%` : 'Starting…');
    case 'SUCCEEDED': return 'Done.';
    case 'FAILED': return failureOf(task.error);
    case 'CANCELLED': return 'Cancelled.';
    default: return '';
  }
}

/** A FAILED task's `error`: an object {errorMessage, reason, ...} (useapi §6), or a string. */
function failureOf(error) {
  if (!error) return 'The task failed.';
  if (typeof error === 'string') return error;
  const message = error.errorMessage || error.message || 'The task failed.';
  return error.reason ? `${message} (${error.reason})` : message;
}

/** Follow the task's event stream; poll every 2 s when the stream cannot be read. */
async function watch(taskId) {
  const ctl = new AbortController();
  state.watch = ctl;
  let last = null;
  const onTask = (task) => {
    if (last && last.status !== task.status) loadTasks().catch(() => {});
    last = task;
    renderTask(task);
  };
  try {
    await readEvents(taskId, ctl.signal, onTask);
  } catch (err) {
    if (ctl.signal.aborted) return;
  }
  while (!ctl.signal.aborted && (!last || IN_FLIGHT.has(last.status))) {
    if (last) await new Promise((r) => setTimeout(r, 2000));
    if (ctl.signal.aborted) return;
    try {
      onTask(await api(`/tasks/${encodeURIComponent(taskId)}`, { signal: ctl.signal }));
    } catch (err) {
      if (!ctl.signal.aborted) showError(err.message);
      return;
    }
  }
  if (ctl.signal.aborted) return;
  loadTasks().catch(() => {});
  loadFeatures().catch(() => {});
}

/** Read `event:`/`data:` blocks of /tasks/{id}/events until the server ends the stream. */
async function readEvents(taskId, signal, onTask) {
  const resp = await fetch(`${API}/tasks/${encodeURIComponent(taskId)}/events`, {
    headers: { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' },
    signal,
  });
  if (!resp.ok || !resp.body) throw new Error(await errorOf(resp));
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      handleEvent(buffer.slice(0, end), taskId, onTask);
      buffer = buffer.slice(end + 2);
    }
  }
}

function handleEvent(block, taskId, onTask) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue; // keep-alive
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (name === 'task' && data.length) onTask(JSON.parse(data.join('\n')));
  else if (name === 'deleted') onTask({ taskId, status: 'DELETED', options: {} });
}

async function cancelOrDelete(taskId) {
  await api(`/tasks/${encodeURIComponent(taskId)}`, { method: 'DELETE' });
  if (taskId === state.taskId) {
    try {
      renderTask(await api(`/tasks/${encodeURIComponent(taskId)}`));
    } catch (_) { /* deleted: nothing left to show */ }
  }
  await loadTasks();
}

// ---- past tasks ------------------------------------------------------------------------------

async function loadTasks() {
  const tasks = await api(`/tasks/?offset=0&limit=20${account('&')}`);
  const rows = tasks.map(taskRow);
  if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 5, className: 'muted',
    textContent: 'No tasks yet.' })));
  $('tasks').replaceChildren(...rows);
}

function taskRow(task) {
  const flying = IN_FLIGHT.has(task.status);
  const prompt = (task.options && task.options.text_prompt) || '';
  const button = (text, cls, fn) => el('button', { type: 'button', textContent: text,
    className: cls, onclick: () => act(fn) });
  const actions = el('td', { className: 'actions' },
    button('Open', 'small', async () => openTask(task)),
    button(flying ? 'Cancel' : 'Delete', 'small danger', () => cancelOrDelete(task.taskId)));
  const artifact = task.status === 'SUCCEEDED' && task.artifacts && task.artifacts[0];
  if (artifact) {
    actions.append(el('a', { href: artifact.url, download: artifact.filename || '',
      className: 'button small', textContent: 'Download' }));
  }
  const row = el('tr', {},
    el('td', { className: 'nowrap created', textContent: formatTime(task.createdAt) }),
    el('td', { className: 'state' }, el('span', { className: 'badge', textContent: task.status })),
    el('td', { className: 'nowrap model', textContent: MODELS[task.taskType] || task.taskType }),
    el('td', { className: 'prompt', textContent: clip(prompt, 140), title: prompt }),
    actions);
  row.dataset.taskId = task.taskId;
  row.dataset.status = task.status;
  row.querySelector('.badge').dataset.status = task.status;
  return row;
}

// ---- wiring ----------------------------------------------------------------------------------

function init() {
  const saved = localStorage.getItem(TOKEN_KEY);
  $('connect-form').addEventListener('submit', (e) => { e.preventDefault(); act(connect); });
  $('gen-form').addEventListener('submit', (e) => { e.preventDefault(); act(submit); });
  $('video').addEventListener('change', (e) => {
    const file = e.target.files[0];
    if (file) act(() => upload(file));
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) act(() => upload(file));
  });
  $('structure_transformation').addEventListener('input', (e) => {
    $('structure_value').textContent = e.target.value;
  });
  $('model').addEventListener('change', (e) => {
    $('aspect_ratio').disabled = e.target.value !== 'gen3turbo';
  });
  $('account').addEventListener('change', (e) => act(() => switchAccount(e.target.value)));
  $('cancel').addEventListener('click', () => act(() => cancelOrDelete(state.taskId)));
  $('refresh').addEventListener('click', () => act(loadTasks));
  if (saved) {
    $('token').value = saved;
    act(connect);
  }
}

init();
