import { h } from './dom.ts';
import type { Session } from './session.ts';
import { errorSentence, w } from './words.ts';

/** Sign in and sign up, one form with two modes. */
export function authView(session: Session, onDone: () => void) {
  let mode: 'login' | 'register' = 'login';
  const error = h('p', { class: 'error', role: 'alert', id: 'auth-error', 'data-testid': 'auth-error' });
  const fields = h('div');
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'auth-submit' });
  const toggle = h('button', { type: 'button', class: 'link', 'data-testid': 'auth-toggle' });
  const form = h('form', { class: 'card auth', 'data-testid': 'auth-form' }, h('h1', {}, w.appName), fields, error, submit, toggle);

  const input = (name: string, label: string, type = 'text', extra: Record<string, string> = {}) =>
    h(
      'label',
      {},
      label,
      h('input', { name, type, required: true, 'data-testid': `auth-${name}`, 'aria-describedby': 'auth-error', ...extra }),
    );

  const draw = () => {
    fields.replaceChildren(
      ...(mode === 'register'
        ? [
            input('email', w.email, 'email', { autocomplete: 'email' }),
            input('username', w.username, 'text', { autocomplete: 'username' }),
            input('displayName', w.displayName, 'text', { autocomplete: 'name' }),
            input('password', w.password, 'password', { autocomplete: 'new-password' }),
          ]
        : [
            input('login', w.login, 'text', { autocomplete: 'username' }),
            input('password', w.password, 'password', { autocomplete: 'current-password' }),
          ]),
    );
    submit.textContent = mode === 'register' ? w.signUp : w.signIn;
    toggle.textContent = mode === 'register' ? w.toSignIn : w.toSignUp;
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
      error.textContent = errorSentence(err);
    } finally {
      submit.disabled = false;
    }
  };
  draw();
  return h('main', { class: 'auth-page' }, form);
}
