import { LlmChatElement } from './LlmChatElement.js';

if (!customElements.get('llm-chat')) customElements.define('llm-chat', LlmChatElement);

export { LlmChatElement };
