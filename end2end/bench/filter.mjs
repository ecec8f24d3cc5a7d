// Filtering the staff home page in Chromium: one keystroke at a time.
//
//   node end2end/bench/filter.mjs BASE_URL 'Sam Staff'
//
// Signs in through the identity provider the dashboard is configured with
// (the local one), waits for the picker to hydrate, then types a query and
// deletes it again, several times. For each keystroke it takes two times
// from the keydown event: until the filtered list is in the DOM and laid
// out (the work the keystroke costs), and until the frame after it has been
// produced (what the person sees; headless Chromium paces frames at 60 Hz,
// so this one includes up to a frame of waiting). Prints JSON.
import { chromium } from '@playwright/test';

const [base, person = 'Sam Staff', query = 'demo site', rounds = '5'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(base);
  await page.getByRole('link', { name: /^Sign in with/ }).click();
  await page.getByRole('button', { name: new RegExp(`Sign in as ${person}`) }).click();
  await page.locator('.picker[data-live="true"]').waitFor({ timeout: 60_000 });
  const total = await page.getByTestId('site-count').textContent();
  const search = page.locator('#site-search');
  await search.focus();
  await page.evaluate(() => {
    window.__work = [];
    window.__frame = [];
    let t0 = 0;
    let end = 0;
    // The keystroke's work ends with the last change it makes to the picker
    // (list rows, the count), laid out: a mutation observer's callback runs
    // right after each batch of changes, and reading offsetHeight there
    // forces style and layout. Keystrokes that change nothing end with the
    // input event's handlers and the microtasks they queue.
    new MutationObserver(() => { void document.body.offsetHeight; end = performance.now(); })
      .observe(document.querySelector('.picker'), { subtree: true, childList: true, characterData: true, attributes: true });
    const input = document.getElementById('site-search');
    input.addEventListener('keydown', () => {
      t0 = performance.now();
      end = t0;
      requestAnimationFrame(() => setTimeout(() => window.__frame.push(performance.now() - t0), 0));
    }, { capture: true });
    input.addEventListener('input', () => {
      queueMicrotask(() => queueMicrotask(() => { end = Math.max(end, performance.now()); }));
    });
    window.__keystrokeDone = () => window.__work.push(end - t0);
  });
  let narrowed = '';
  for (let r = 0; r < Number(rounds); r++) {
    for (const ch of query) {
      await page.keyboard.press(ch === ' ' ? 'Space' : ch);
      await page.waitForTimeout(40);
      await page.evaluate(() => window.__keystrokeDone());
    }
    narrowed = await page.getByTestId('site-count').textContent();
    for (let i = 0; i < query.length; i++) {
      await page.keyboard.press('Backspace');
      await page.waitForTimeout(40);
      await page.evaluate(() => window.__keystrokeDone());
    }
  }
  await page.waitForTimeout(100);
  const { work, frame } = await page.evaluate(() => ({ work: window.__work, frame: window.__frame }));
  const restored = await page.getByTestId('site-count').textContent();
  console.log(JSON.stringify({ total, narrowed, restored, work, frame }));
} finally {
  await browser.close();
}
