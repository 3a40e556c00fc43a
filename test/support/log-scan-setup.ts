import { afterAll, expect } from 'vitest';
import { recordedLines, secretsIn } from './log-scan';

// After every test file: no line any of its runtimes wrote holds a credential or a hash of one.
afterAll(() => {
  const leaks = recordedLines.flatMap((line) => {
    const found = secretsIn(line);
    return found.length ? [`${found.join(', ')}: ${line.slice(0, 300)}`] : [];
  });
  expect(leaks, 'log lines holding a credential or a hash').toEqual([]);
});
