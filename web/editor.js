// The code editor of the student page: a plain textarea that indents as a
// programmer expects. Tab indents (Shift+Tab unindents) the lines the selection
// touches, Esc then Tab leaves the editor (keyboard users must be able to), a new
// line keeps the indentation of the one it breaks, and Ctrl+Enter submits.


const indentUnit = '    ';

// replaceRange replaces text start..end of the textarea and selects
// selStart..selEnd. It goes through execCommand where it can, which keeps
// the browser's undo history.
function replaceRange(ta, start, end, text, selStart, selEnd) {
  ta.setSelectionRange(start, end);
  if (!document.execCommand('insertText', false, text)) {
    ta.setRangeText(text, start, end, 'end');
    ta.dispatchEvent(new Event('input', { bubbles: true }));
  }
  ta.setSelectionRange(selStart, selEnd);
}

// shiftLines indents (by one unit) or unindents the lines that the
// selection touches.
function shiftLines(ta, out) {
  const { value, selectionStart: s, selectionEnd: e } = ta;
  const from = value.lastIndexOf('\n', s - 1) + 1;
  const to = e > s && value[e - 1] === '\n' ? e - 1 : e; // a selection ending at a line start leaves that line
  const lines = value.slice(from, to).split('\n');
  let first = 0;
  let total = 0;
  const shifted = lines.map((line, i) => {
    let d;
    if (out) {
      d = line.length - line.replace(/^( {1,4}|\t)/, '').length;
      line = line.slice(d);
      d = -d;
    } else {
      d = indentUnit.length;
      line = indentUnit + line;
    }
    if (i === 0) first = d;
    total += d;
    return line;
  });
  const text = shifted.join('\n');
  if (total === 0) return;
  replaceRange(ta, from, to, text, Math.max(from, s + first), e + total);
}

let escaped = false; // Esc was the last key: the next Tab leaves the editor

function onEditorKey(e, submit) {
  const ta = e.currentTarget;
  if (['Shift', 'Control', 'Alt', 'Meta'].includes(e.key)) return;
  const wasEscaped = escaped;
  escaped = e.key === 'Escape';
  const plain = !e.ctrlKey && !e.altKey && !e.metaKey;
  if (e.key === 'Tab' && plain) {
    if (wasEscaped) return; // the browser moves the focus on
    e.preventDefault();
    const { value, selectionStart: s, selectionEnd: end } = ta;
    if (e.shiftKey || value.slice(s, end).includes('\n')) return shiftLines(ta, e.shiftKey);
    const col = s - (value.lastIndexOf('\n', s - 1) + 1);
    const pad = ' '.repeat(indentUnit.length - (col % indentUnit.length));
    replaceRange(ta, s, end, pad, s + pad.length, s + pad.length);
  } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    submit();
  }
}

// onEditorInput makes a new line keep the indentation of the one it breaks.
// It acts on the line break about to be inserted rather than on the Enter
// key, so that it sees every way a line break is typed.
function onEditorInput(e) {
  if (e.inputType !== 'insertLineBreak' && e.inputType !== 'insertParagraph') return;
  const ta = e.currentTarget;
  const { value, selectionStart: s, selectionEnd: end } = ta;
  const indent = /^[ \t]*/.exec(value.slice(value.lastIndexOf('\n', s - 1) + 1, s))[0];
  if (!indent) return; // the browser's own line break will do
  e.preventDefault();
  const at = s + 1 + indent.length;
  replaceRange(ta, s, end, '\n' + indent, at, at);
}

// attachEditor makes textarea ta a code editor; submit is called on Ctrl+Enter.
export function attachEditor(ta, submit) {
  ta.addEventListener('keydown', (e) => onEditorKey(e, submit));
  ta.addEventListener('beforeinput', onEditorInput);
}
