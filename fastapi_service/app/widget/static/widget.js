/* Chatbot Platform widget — embed with:
 *   <script src="https://ENGINE/widget.js" data-key="cbp_pk_..." defer></script>
 * Optional: data-api="https://ENGINE" (default: where this script came from), data-open="true".
 * API: window.ChatbotPlatform("open" | "close" | "toggle" | "ask", text) — calls made before the
 * script loads (window.ChatbotPlatform.q) are replayed.
 * Everything lives in a Shadow DOM; model output is rendered with textContent only. */
(function () {
  'use strict';

  var NS = 'cbp-widget';
  var script = document.currentScript;
  if (!script || window.__cbpWidgetLoaded) { return; } // idempotent: one widget per page
  window.__cbpWidgetLoaded = true;

  var KEY = script.getAttribute('data-key') || '';
  var API = (script.getAttribute('data-api') || new URL(script.src, location.href).origin).replace(/\/+$/, '');
  var STORE = NS + ':session:' + KEY.slice(0, 16);

  var CSS = [
    ':host{all:initial}',
    '*{box-sizing:border-box;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}',
    '.launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;',
    'background:var(--cbp-color);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;',
    'display:flex;align-items:center;justify-content:center}',
    '.launcher svg{width:28px;height:28px;fill:currentColor}',
    '.panel{position:fixed;right:20px;bottom:88px;width:370px;max-width:calc(100vw - 24px);height:560px;',
    'max-height:calc(100vh - 110px);background:#fff;color:#111;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);',
    'display:none;flex-direction:column;overflow:hidden;z-index:2147483001;font-size:14px;line-height:1.45}',
    '.panel.open{display:flex}',
    '.head{background:var(--cbp-color);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}',
    '.title{font-weight:600;flex:1;font-size:15px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}',
    '.icon{background:transparent;border:0;color:#fff;cursor:pointer;font-size:18px;padding:2px 6px;border-radius:6px}',
    '.icon:hover{background:rgba(255,255,255,.2)}',
    '.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f7f7f9}',
    '.msg{max-width:88%;padding:9px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}',
    '.user{align-self:flex-end;background:var(--cbp-color);color:#fff;border-bottom-right-radius:4px}',
    '.bot{align-self:flex-start;background:#fff;border:1px solid #e4e4e7;border-bottom-left-radius:4px}',
    '.bot a{color:var(--cbp-color)}',
    '.label{font-size:11px;color:#71717a;margin-top:6px}',
    '.sources{margin-top:8px;border-top:1px solid #eee;padding-top:6px;display:flex;flex-direction:column;gap:4px}',
    '.source{font-size:12px;color:#3f3f46}',
    '.source a,.source b{font-weight:600;color:var(--cbp-color);text-decoration:none}',
    '.snippet{display:block;color:#71717a;white-space:normal}',
    '.rate{display:flex;gap:6px;margin-top:6px}',
    '.rate button{border:1px solid #e4e4e7;background:#fff;border-radius:6px;cursor:pointer;padding:1px 7px;font-size:13px}',
    '.rate button[aria-pressed=true]{background:var(--cbp-color);color:#fff;border-color:var(--cbp-color)}',
    '.thumb{width:14px;height:14px;fill:currentColor;vertical-align:middle}.thumb.down{transform:rotate(180deg)}',
    '.suggestions{display:flex;flex-wrap:wrap;gap:6px;padding:0 12px 8px;background:#f7f7f9}',
    '.suggestion{border:1px solid var(--cbp-color);color:var(--cbp-color);background:#fff;border-radius:999px;',
    'padding:4px 10px;cursor:pointer;font-size:13px}',
    'form{display:flex;gap:8px;padding:10px;border-top:1px solid #e4e4e7;background:#fff}',
    'textarea{flex:1;resize:none;border:1px solid #d4d4d8;border-radius:10px;padding:8px 10px;font-size:14px;height:40px;max-height:120px}',
    'textarea:focus{outline:2px solid var(--cbp-color);outline-offset:-1px}',
    '.send{background:var(--cbp-color);color:#fff;border:0;border-radius:10px;padding:0 14px;cursor:pointer;font-weight:600}',
    '.send:disabled{opacity:.5;cursor:default}',
    '.error{align-self:center;color:#b91c1c;font-size:12px}',
    '.human{background:rgba(255,255,255,.18);border:1px solid rgba(255,255,255,.6);color:#fff;border-radius:999px;',
    'padding:2px 10px;font-size:12px;cursor:pointer;white-space:nowrap}.human:disabled{opacity:.6;cursor:default}',
    '.notice{align-self:stretch;background:#ecfdf5;border:1px solid #a7f3d0;color:#065f46;border-radius:10px;padding:8px 10px;font-size:13px}',
    '.typing::after{content:"\u2026";animation:blink 1s infinite}',
    '@keyframes blink{50%{opacity:.2}}',
    '@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}',
    '.launcher{right:14px;bottom:14px}.panel.open~.launcher{display:none}}'
  ].join('');

  var state = { config: null, sessionId: null, busy: false, open: false, loaded: false };
  var ui = {};

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text != null) { node.textContent = String(text); }
    return node;
  }

  function safeUrl(value) {
    try {
      var url = new URL(String(value));
      return (url.protocol === 'http:' || url.protocol === 'https:') ? url.href : null;
    } catch (e) { return null; }
  }

  // Text with bare http(s) URLs turned into links; everything else stays text. No HTML is parsed.
  function renderText(container, text) {
    container.textContent = '';
    var re = /https?:\/\/[^\s<>"'()\]]+/g;
    var last = 0;
    var match;
    while ((match = re.exec(text)) !== null) {
      container.appendChild(document.createTextNode(text.slice(last, match.index)));
      var href = safeUrl(match[0].replace(/[.,;:!?]+$/, ''));
      if (href) {
        var a = el('a', null, match[0]);
        a.href = href;
        a.target = '_blank';
        a.rel = 'noopener noreferrer nofollow';
        container.appendChild(a);
      } else {
        container.appendChild(document.createTextNode(match[0]));
      }
      last = match.index + match[0].length;
    }
    container.appendChild(document.createTextNode(text.slice(last)));
  }

  function headers(json) {
    var h = { 'Authorization': 'Bearer ' + KEY };
    if (json) { h['Content-Type'] = 'application/json'; }
    return h;
  }

  function request(path, options) {
    options = options || {};
    options.headers = headers(!!options.body);
    options.mode = 'cors';
    options.credentials = 'omit';
    return fetch(API + path, options);
  }

  function scrollDown() { ui.log.scrollTop = ui.log.scrollHeight; }

  function showError(text) {
    var node = el('div', 'error', text);
    ui.log.appendChild(node);
    scrollDown();
  }

  // What happens after a visitor asked for a person, in the chatbot's words (from the engine).
  function showNotice(text) {
    var node = el('div', 'notice', text);
    node.setAttribute('data-role', 'handoff');
    ui.log.appendChild(node);
    scrollDown();
  }

  function handedOff(message) {
    ui.human.disabled = true;
    showNotice(message);
  }

  function askForHuman() {
    if (!state.sessionId) {
      showNotice('Ask your question first; a person can then follow up on this conversation.');
      return;
    }
    ui.human.disabled = true;
    request('/v1/handoff', { method: 'POST', body: JSON.stringify({ session_id: state.sessionId }) })
      .then(function (res) {
        return res.json()['catch'](function () { return {}; }).then(function (data) {
          if (!res.ok) { throw new Error((data && data.detail) || 'Something went wrong.'); }
          handedOff(data.message);
        });
      })
      ['catch'](function (err) {
        ui.human.disabled = false;
        showError(err && err.message ? err.message : 'Network error.');
      });
  }

  function addUser(text) {
    var node = el('div', 'msg user', text);
    node.setAttribute('data-role', 'user');
    ui.log.appendChild(node);
    scrollDown();
  }

  function addBot() {
    var wrap = el('div', 'msg bot');
    wrap.setAttribute('data-role', 'assistant');
    var body = el('div', 'body');
    wrap.appendChild(body);
    ui.log.appendChild(wrap);
    scrollDown();
    return { wrap: wrap, body: body, text: '' };
  }

  function showSources(bubble, sources) {
    var old = bubble.wrap.querySelector('.sources');
    if (old) { old.remove(); }
    if (!sources || !sources.length) { return; }
    var list = el('div', 'sources');
    list.appendChild(el('div', 'label', 'Sources'));
    sources.forEach(function (s, i) {
      var item = el('div', 'source');
      var href = s.url ? safeUrl(s.url) : null;
      var name = '[' + (i + 1) + '] ' + (s.name || 'Document');
      if (typeof s.page === 'number') { name += ', p. ' + s.page; }
      var title;
      if (href) {
        title = el('a', null, name);
        title.href = href;
        title.target = '_blank';
        title.rel = 'noopener noreferrer nofollow';
      } else {
        title = el('b', null, name);
      }
      item.appendChild(title);
      if (s.snippet) { item.appendChild(el('span', 'snippet', s.snippet)); }
      list.appendChild(item);
    });
    bubble.wrap.appendChild(list);
  }

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var THUMB = 'M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 ' +
    '7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z';

  function thumb(down) {
    var svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', down ? 'thumb down' : 'thumb');
    var path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', THUMB);
    svg.appendChild(path);
    return svg;
  }

  function showMeta(bubble, messageId, generator) {
    if (generator === 'extractive') {
      bubble.wrap.appendChild(el('div', 'label', 'Quoted from the documents'));
    }
    if (!messageId) { return; }
    var rate = el('div', 'rate');
    [['up', 'Helpful'], ['down', 'Not helpful']].forEach(function (r) {
      var b = el('button');
      b.appendChild(thumb(r[0] === 'down'));
      b.type = 'button';
      b.title = r[1];
      b.setAttribute('aria-label', r[1]);
      b.setAttribute('data-rating', r[0]);
      b.setAttribute('aria-pressed', 'false');
      b.addEventListener('click', function () {
        request('/v1/feedback', { method: 'POST', body: JSON.stringify({ message_id: messageId, rating: r[0] }) })
          .then(function (res) {
            if (!res.ok) { return; }
            rate.querySelectorAll('button').forEach(function (x) { x.setAttribute('aria-pressed', 'false'); });
            b.setAttribute('aria-pressed', 'true');
          })['catch'](function () {});
      });
      rate.appendChild(b);
    });
    bubble.wrap.appendChild(rate);
  }

  function saveSession(id) {
    state.sessionId = id;
    try { localStorage.setItem(STORE, id); } catch (e) { /* storage may be disabled */ }
  }

  function parseEvents(buffer, onEvent) {
    var parts = buffer.split(/\r?\n\r?\n/);
    var rest = parts.pop();
    parts.forEach(function (block) {
      var name = 'message';
      var data = '';
      block.split(/\r?\n/).forEach(function (line) {
        if (line.indexOf('event:') === 0) { name = line.slice(6).trim(); }
        else if (line.indexOf('data:') === 0) { data += line.slice(5).trim(); }
      });
      if (data) {
        try { onEvent(name, JSON.parse(data)); } catch (e) { /* ignore a malformed event */ }
      }
    });
    return rest;
  }

  function ask(text) {
    text = String(text || '').trim();
    if (!text || state.busy) { return; }
    state.busy = true;
    ui.send.disabled = true;
    ui.suggestions.style.display = 'none';
    addUser(text);
    var bubble = addBot();
    bubble.body.classList.add('typing');
    var payload = { message: text, stream: true };
    if (state.sessionId) { payload.session_id = state.sessionId; }
    var finished = false;

    function onEvent(name, data) {
      if (name === 'token') {
        bubble.text += data.text || '';
        bubble.body.classList.remove('typing');
        renderText(bubble.body, bubble.text);
        scrollDown();
      } else if (name === 'sources') {
        showSources(bubble, data.sources);
      } else if (name === 'done') {
        finished = true;
        if (data.session_id) { saveSession(data.session_id); }
        showMeta(bubble, data.message_id, data.generator);
        if (data.handoff && data.handoff.message) { handedOff(data.handoff.message); }
      } else if (name === 'error') {
        finished = true;
        showError(data.detail || 'The answer was interrupted.');
      }
    }

    request('/v1/chat', { method: 'POST', body: JSON.stringify(payload) })
      .then(function (res) {
        if (res.status === 404 && state.sessionId) {
          // The session is gone (e.g. the chatbot was reset): start a fresh one.
          try { localStorage.removeItem(STORE); } catch (e) { /* ignore */ }
          state.sessionId = null;
        }
        if (!res.ok || !res.body) {
          return res.json()['catch'](function () { return {}; }).then(function (err) {
            throw new Error(res.status === 429 ? 'Too many questions — please wait a moment.'
              : (err && err.detail) || 'Something went wrong.');
          });
        }
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              parseEvents(buffer + '\n\n', onEvent);
              return;
            }
            buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), onEvent);
            return pump();
          });
        }
        return pump();
      })
      .then(function () {
        if (!finished && !bubble.text) { throw new Error('No answer received.'); }
      })
      ['catch'](function (err) {
        if (!bubble.text) { bubble.wrap.remove(); }
        showError(err && err.message ? err.message : 'Network error.');
      })
      .then(function () {
        bubble.body.classList.remove('typing');
        state.busy = false;
        ui.send.disabled = false;
      });
  }

  function restoreHistory() {
    var id = null;
    try { id = localStorage.getItem(STORE); } catch (e) { /* ignore */ }
    if (!id) { return Promise.resolve(); }
    state.sessionId = id;
    return request('/v1/sessions/' + encodeURIComponent(id) + '/messages', { method: 'GET' })
      .then(function (res) {
        if (!res.ok) {
          state.sessionId = null;
          try { localStorage.removeItem(STORE); } catch (e) { /* ignore */ }
          return null;
        }
        return res.json();
      })
      .then(function (data) {
        if (!data || !data.messages) { return; }
        if (data.messages.length) { ui.suggestions.style.display = 'none'; }
        data.messages.forEach(function (m) {
          if (m.role === 'user') { addUser(m.content); return; }
          var bubble = addBot();
          bubble.text = m.content;
          renderText(bubble.body, m.content);
          showSources(bubble, m.sources);
          showMeta(bubble, m.id, m.generator);
        });
      })['catch'](function () {});
  }

  function applyConfig(config) {
    state.config = config;
    ui.host.style.setProperty('--cbp-color', /^#[0-9a-fA-F]{6}$/.test(config.color || '') ? config.color : '#4F46E5');
    ui.title.textContent = config.title || 'Chat';
    ui.human.style.display = config.handoff ? '' : 'none';
    ui.launcher.setAttribute('aria-label', 'Open chat: ' + (config.title || 'Chat'));
    if (config.welcome) {
      var welcome = addBot();
      welcome.wrap.classList.add('welcome');
      renderText(welcome.body, config.welcome);
    }
    ui.suggestions.textContent = '';
    (config.suggestions || []).slice(0, 10).forEach(function (s) {
      var b = el('button', 'suggestion', s);
      b.type = 'button';
      b.addEventListener('click', function () { ask(s); });
      ui.suggestions.appendChild(b);
    });
  }

  function load() {
    if (state.loaded) { return; }
    state.loaded = true;
    request('/v1/widget/config', { method: 'GET' })
      .then(function (res) {
        if (!res.ok) { throw new Error('config ' + res.status); }
        return res.json();
      })
      .then(function (config) { applyConfig(config); return restoreHistory(); })
      ['catch'](function () { showError('The assistant is not available on this site.'); });
  }

  function setOpen(open) {
    state.open = open;
    ui.panel.classList.toggle('open', open);
    ui.launcher.setAttribute('aria-expanded', String(open));
    if (open) { load(); setTimeout(function () { ui.input.focus(); }, 0); }
  }

  function build() {
    var host = el('div');
    host.id = NS;
    host.style.setProperty('--cbp-color', '#4F46E5');
    var root = host.attachShadow({ mode: 'open' });
    var style = el('style');
    style.textContent = CSS;
    root.appendChild(style);

    var panel = el('div', 'panel');
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', 'Chat');
    var head = el('div', 'head');
    var title = el('div', 'title', 'Chat');
    var close = el('button', 'icon', '\u00D7');
    close.type = 'button';
    close.setAttribute('aria-label', 'Close chat');
    close.addEventListener('click', function () { setOpen(false); });
    var human = el('button', 'human', 'Talk to a person');
    human.type = 'button';
    human.style.display = 'none';
    human.addEventListener('click', askForHuman);
    head.appendChild(title);
    head.appendChild(human);
    head.appendChild(close);
    var log = el('div', 'log');
    log.setAttribute('aria-live', 'polite');
    var suggestions = el('div', 'suggestions');
    var form = el('form');
    var input = el('textarea');
    input.placeholder = 'Ask a question\u2026';
    input.maxLength = 4000;
    input.setAttribute('aria-label', 'Your question');
    var send = el('button', 'send', 'Send');
    send.type = 'submit';
    form.appendChild(input);
    form.appendChild(send);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = input.value;
      input.value = '';
      ask(text);
    });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : send.click(); }
    });
    panel.appendChild(head);
    panel.appendChild(log);
    panel.appendChild(suggestions);
    panel.appendChild(form);

    var launcher = el('button', 'launcher');
    launcher.type = 'button';
    launcher.setAttribute('aria-label', 'Open chat');
    launcher.setAttribute('aria-expanded', 'false');
    var svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    var path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z');
    svg.appendChild(path);
    launcher.appendChild(svg);
    launcher.addEventListener('click', function () { setOpen(!state.open); });

    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);
    ui = { host: host, root: root, panel: panel, title: title, log: log, suggestions: suggestions,
      input: input, send: send, launcher: launcher, human: human };
  }

  function command(name, arg) {
    if (name === 'open') { setOpen(true); }
    else if (name === 'close') { setOpen(false); }
    else if (name === 'toggle') { setOpen(!state.open); }
    else if (name === 'ask') { setOpen(true); ask(arg); }
  }

  function init() {
    try {
      if (!/^cbp_pk_[0-9A-Za-z]{38}$/.test(KEY)) {
        if (window.console) { console.warn('[chatbot widget] data-key must be a publishable key (cbp_pk_...)'); }
        return;
      }
      build();
      var queued = (window.ChatbotPlatform && window.ChatbotPlatform.q) || [];
      window.ChatbotPlatform = function () {
        try { command(arguments[0], arguments[1]); } catch (e) { /* never throw into the host page */ }
      };
      queued.forEach(function (args) { window.ChatbotPlatform.apply(null, args); });
      if (script.getAttribute('data-open') === 'true') { setOpen(true); }
      else {
        // Restore a running conversation right away so a reload keeps it visible when reopened.
        try { if (localStorage.getItem(STORE)) { setOpen(true); } } catch (e) { /* ignore */ }
      }
    } catch (e) {
      if (window.console) { console.warn('[chatbot widget] failed to start', e); }
    }
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
})();
