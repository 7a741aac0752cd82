import { defineConfig } from 'vite';

/**
 * Builds the demo page and the widget: any page embeds it with
 * `<script type="module" src="https://server/llm-chat.js"></script><llm-chat server="wss://server/v1/ws"></llm-chat>`.
 */
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The script runs on other sites' pages: it must not go looking at their <link rel="modulepreload">.
    modulePreload: { polyfill: false },
    rollupOptions: { output: { entryFileNames: 'llm-chat.js', assetFileNames: '[name][extname]' } },
  },
});
