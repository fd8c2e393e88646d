import { errorText } from '@hubbub/client';
import { h } from './dom.ts';
import type { Session } from './session.ts';

/** Sign in and sign up, one form with two modes. */
export function authView(session: Session, onDone: () => void) {
  let mode: 'login' | 'register' = 'login';
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'auth-error' });
  const fields = h('div');
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'auth-submit' });
  const toggle = h('button', { type: 'button', class: 'link', 'data-testid': 'auth-toggle' });
  const form = h('form', { class: 'card auth', 'data-testid': 'auth-form' }, h('h1', {}, 'Hubbub'), fields, error, submit, toggle);

  const input = (name: string, label: string, type = 'text', extra: Record<string, string> = {}) =>
    h('label', {}, label, h('input', { name, type, required: true, 'data-testid': `auth-${name}`, ...extra }));

  const draw = () => {
    fields.replaceChildren(
      ...(mode === 'register'
        ? [
            input('email', 'Email', 'email', { autocomplete: 'email' }),
            input('username', 'Username', 'text', { autocomplete: 'username' }),
            input('displayName', 'Display name'),
            input('password', 'Password', 'password', { autocomplete: 'new-password' }),
          ]
        : [input('login', 'Username or email', 'text', { autocomplete: 'username' }), input('password', 'Password', 'password', { autocomplete: 'current-password' })]),
    );
    submit.textContent = mode === 'register' ? 'Create account' : 'Sign in';
    toggle.textContent = mode === 'register' ? 'I have an account: sign in' : 'New here? Create an account';
    error.textContent = '';
  };
  toggle.onclick = () => {
    mode = mode === 'login' ? 'register' : 'login';
    draw();
  };
  // The browser's own checks would stop short inputs before the server explains them; the
  // server's rules are the ones that count, and its answer is turned into a sentence.
  form.noValidate = true;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const v = (n: string) => (form.elements.namedItem(n) as HTMLInputElement | null)?.value ?? '';
    error.textContent = '';
    submit.disabled = true;
    try {
      const r =
        mode === 'register'
          ? await session.anon.auth.register.mutate({
              email: v('email'),
              username: v('username'),
              password: v('password'),
              ...(v('displayName').trim() ? { displayName: v('displayName') } : {}),
            })
          : await session.anon.auth.login.mutate({ login: v('login'), password: v('password') });
      session.save(r);
      onDone();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  };
  draw();
  return h('div', { class: 'auth-page' }, form);
}
