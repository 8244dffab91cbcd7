() => {
  // Keyboard habits: Enter sends, Shift+Enter is a newline, Esc stops. Gradio's textbox submits on Shift+Enter
  // when it has several lines; these capture-phase listeners run before its own and keep it from seeing Enter.
  const inPrompt = (e) => e.target.closest && e.target.closest('#prompt textarea');
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      const send = document.querySelector('#send');
      if (send && send.disabled) document.querySelector('#stop')?.click();  // only while an answer runs
      document.querySelector('#tok-tip')?.setAttribute('hidden', '');
      return;
    }
    if (e.key !== 'Enter' || !inPrompt(e) || e.isComposing) return;
    e.stopPropagation();
    if (!e.shiftKey) {
      e.preventDefault();
      document.querySelector('#send')?.click();
    }
  }, true);
  document.addEventListener('keypress', (e) => { if (e.key === 'Enter' && inPrompt(e)) e.stopPropagation(); }, true);

  // Every member's share of a token, for keyboard focus and taps (the title tooltip needs a mouse).
  const tip = document.createElement('div');
  tip.id = 'tok-tip';
  tip.setAttribute('role', 'status');
  tip.hidden = true;
  document.body.appendChild(tip);
  const show = (tok) => {
    tip.textContent = tok.getAttribute('title');
    const r = tok.getBoundingClientRect();
    tip.style.left = `${Math.max(4, r.left + window.scrollX)}px`;
    tip.style.top = `${r.bottom + window.scrollY + 4}px`;
    tip.hidden = false;
  };
  const token = (e) => e.target.closest && e.target.closest('.tok[title]');
  document.addEventListener('focusin', (e) => { const t = token(e); if (t) show(t); else tip.hidden = true; });
  document.addEventListener('click', (e) => { const t = token(e); if (t) show(t); else tip.hidden = true; });

  // The exact text behind a message button: the hidden #raw-<column>-<turn> or #raw-user-<turn> element, not the
  // rendered markup. The button's message is the last one before it in the document.
  const rawFor = (button) => {
    const column = button.closest('[id^="col-"]');
    if (!column) return null;
    const messages = [...column.querySelectorAll("[data-testid='bot'], [data-testid='user']")]
      .filter((m) => m.compareDocumentPosition(button) & Node.DOCUMENT_POSITION_FOLLOWING);
    const message = messages[messages.length - 1];
    if (!message) return null;
    const role = message.dataset.testid;
    const index = [...column.querySelectorAll(`[data-testid='${role}']`)].indexOf(message);
    return document.querySelector(role === 'user' ? `#raw-user-${index}` : `#raw-${column.id.slice(4)}-${index}`);
  };

  // Edit: Gradio's edit box starts with the message's HTML (escaped, <br>); put the exact prompt there instead.
  document.addEventListener('click', (e) => {
    const button = e.target.closest && e.target.closest('[id^="col-"] button[title="Edit"]');
    const raw = button && rawFor(button);
    if (!raw) return;
    const column = button.closest('[id^="col-"]');
    const text = raw.textContent;
    const fill = (tries) => {  // once Gradio has rendered its edit box and filled it
      const box = column.querySelector('textarea.edit-textarea');
      if (!box || !box.value) { if (tries > 0) setTimeout(() => fill(tries - 1), 20); return; }
      box.value = text;
      box.dispatchEvent(new Event('input', { bubbles: true }));
      box.focus();
    };
    fill(100);
  }, true);

  // Copy gives the exact answer text.
  document.addEventListener('click', (e) => {
    const button = e.target.closest && e.target.closest('button[title="Copy message"]');
    const raw = button && rawFor(button);
    if (!raw) return;
    e.stopPropagation();  // Gradio's own handler would copy the rendered markup
    e.preventDefault();
    navigator.clipboard?.writeText(raw.textContent).then(() => {
      button.style.opacity = '0.4';
      setTimeout(() => { button.style.opacity = ''; }, 600);
    }).catch(() => {});
  }, true);
}
