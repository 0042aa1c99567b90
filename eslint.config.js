import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/ and what each may import (docs/architecture.md, "Layers"). The allowed imports
 * form a DAG, so no two folders can depend on each other. Order matters: the first pattern that
 * matches a file names its element.
 */
const elements = [
  { type: 'core', pattern: 'src/core' },
  { type: 'protocol', pattern: 'src/protocols/*', capture: ['service'] },
  { type: 'dialect', pattern: 'src/api/dialects/*', capture: ['dialect'] },
  { type: 'http', pattern: 'src/api/http' },
  // The rest of src/api: the app and the dialect registry.
  { type: 'api', pattern: 'src/api' },
  { type: 'provider', pattern: 'src/providers/*', capture: ['provider'] },
  // The rest of src/providers: the provider registry.
  { type: 'providers', pattern: 'src/providers' },
  ...['db', 'queue', 'storage', 'events', 'webhooks', 'worker', 'metrics', 'config', 'main', 'client'].map((folder) => ({
    type: folder,
    pattern: `src/${folder}`,
  })),
];

const may = (from, ...to) => ({ from: { element: { type: from } }, allow: { to: { element: { types: { anyOf: to } } } } });

const layerPolicies = [
  may('protocol', 'protocol'),
  may('dialect', 'core', 'protocol', 'http'),
  may('http', 'core', 'protocol', 'config'),
  may('api', 'core', 'http', 'dialect'),
  may('provider', 'core', 'protocol'),
  may('providers', 'core', 'provider'),
  may('db', 'core'),
  may('queue', 'core', 'config'),
  may('storage', 'core', 'config'),
  may('events', 'core'),
  may('webhooks', 'core', 'db', 'config'),
  may('worker', 'core'),
  may('metrics', 'core'),
  may('config', 'core', 'providers'),
  may(
    'main',
    ...elements.map((element) => element.type),
  ),
  // The typed client is published on its own: it may use the native API's protocol and nothing else.
  { from: { element: { type: 'client' } }, allow: { to: { element: { type: 'protocol', captured: { service: 'native' } } } } },
];

/** Packages of adapters: the core and the protocols are pure, so loading them costs neither sharp, a database driver nor an HTTP stack. */
const ADAPTER_PACKAGES = ['prom-client', 'sharp', 'drizzle-orm', 'drizzle-orm/*', 'pg', '@electric-sql/*', 'fastify', '@fastify/*', 'bullmq', 'ioredis', '@aws-sdk/*', 'pino', 'dotenv'];

export default tseslint.config(
  { ignores: ['node_modules', 'data', 'dist', 'drizzle', 'coverage', 'test-artifacts', 'scratch'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Only src/config reads the environment.' }],
    },
  },
  {
    files: ['src/config/**', 'test/**', 'bench/**', 'bin/**', 'vitest.config.ts', 'drizzle.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { boundaries },
    settings: {
      'boundaries/elements': elements,
      'import/resolver': { node: { extensions: ['.ts', '.js'] } },
    },
    rules: {
      'boundaries/dependencies': ['error', { default: 'disallow', policies: layerPolicies }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: [...ADAPTER_PACKAGES, 'typebox', 'ajv'], message: 'The core is pure: adapters load this package, it does not.' }] }],
    },
  },
  {
    files: ['src/protocols/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ADAPTER_PACKAGES, message: 'A protocol is pure: no server, database or environment.' }] }],
    },
  },
);
