// Builds the dashboards into dashboards/dist (served by the control plane at /), and serves them with hot
// reload in development, proxying the API (HTTP and graphql-ws) to a running control plane.
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const api = process.env.ATELIER_URL ?? 'http://localhost:4000';

export default defineConfig({
  root,
  base: '/',
  // no prerendering: every page needs a signed-in API client
  plugins: [preact({ prerender: { enabled: false } })],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    reportCompressedSize: false,
  },
  server: {
    port: Number(process.env.DASHBOARDS_PORT ?? 5173),
    proxy: { '/graphql': { target: api, ws: true, changeOrigin: true } },
  },
  preview: { proxy: { '/graphql': { target: api, ws: true, changeOrigin: true } } },
});
