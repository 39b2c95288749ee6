import { defineConfig, type Plugin } from 'vite';
import { resolve } from 'node:path';

// Where `npm run dev` sends API and WebSocket calls: a running `jono serve`.
const backend = process.env.JONO_BACKEND ?? 'http://127.0.0.1:8099';

// In development, mimic the gateway's routes: `/widget` is widget.html,
// `/invite/TOKEN`, `/confirm/TOKEN`, `/reset/TOKEN` (every console path) are index.html.
function gatewayRoutes(): Plugin {
  return {
    name: 'jono-gateway-routes',
    configureServer(server) {
      server.middlewares.use((req, _res, next) => {
        if (req.url && /^\/widget(\?|$)/.test(req.url)) req.url = req.url.replace('/widget', '/widget.html');
        else if (req.url && /^\/(invite|confirm|reset)\//.test(req.url)) req.url = '/index.html';
        else if (req.url === '/loader.js') req.url = '/src/loader.ts';
        next();
      });
    },
  };
}

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  plugins: [gatewayRoutes()],
  server: {
    port: 5173,
    proxy: {
      '/v1': { target: backend, ws: true, changeOrigin: true },
    },
  },
  // `vite preview` (used by the browser test) sends the gateway's Content-Security-Policy, less
  // `frame-ancestors` (the widget is framed by other sites), so a CSP violation fails the test.
  preview: {
    port: 4173,
    headers: {
      'Content-Security-Policy': "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'self'",
      'X-Content-Type-Options': 'nosniff',
    },
  },
  build: {
    target: 'es2020',
    rollupOptions: {
      input: {
        console: resolve(import.meta.dirname, 'index.html'),
        widget: resolve(import.meta.dirname, 'widget.html'),
        loader: resolve(import.meta.dirname, 'src/loader.ts'),
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'loader' ? 'loader.js' : 'assets/[name]-[hash].js'),
        chunkFileNames: 'assets/shared-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
});
