// One lint config for the whole tree; type-aware so the concurrency rules can see promises.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const layer = (from, forbidden) => ({
  files: [`src/${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: forbidden,
            message: `src/${from} must not import this (layers: action, cli -> deploy -> engine -> oss; server shares only crc64).`,
          },
        ],
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tmp/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'Use an `as const` object instead of an enum.' },
        {
          selector: "CallExpression[callee.object.name='process'][callee.property.name='exit']",
          message: 'No process.exit outside an entry point; let the entry set the exit code.',
        },
      ],
    },
  },
  layer('oss', ['**/engine/**', '**/action/**', '**/server/**', '**/cli/**', '@actions/*']),
  layer('engine', ['**/action/**', '**/server/**', '**/cli/**', '@actions/*']),
  layer('deploy', ['**/action/**', '**/server/**', '**/cli/**', '@actions/*']),
  layer('cli', ['**/action/**', '**/server/**', '@actions/*']),
  layer('server', [
    '**/engine/**',
    '**/action/**',
    '**/cli/**',
    '**/oss/signer*',
    '**/oss/client*',
    '@actions/*',
  ]),
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'chaos/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      'no-restricted-syntax': 'off',
    },
  },
  prettier,
);
